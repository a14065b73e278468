"""The contract's tables as Spark frames, each row tagged with its customer's hash bucket.

Why: every per-account computation needs all the accounts of a customer together, so a Spark job groups rows
by a bucket of their customer. The accounts carry the customer; the other tables learn it by joining the
accounts' ids. What reads those frames (features.spark_groups, which shuffles them into groups;
features.spark_layout, which writes them one folder per bucket) shares this one tagging.
"""
from __future__ import annotations

import dataclasses
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.contract import CORE_TABLES, SCHEMAS, ContractError, Problem, find_table, missing_columns
from features.spark_session import PANDAS_WARNING

BUCKET = "_bucket"
ORPHAN = -1  # the bucket of rows whose account the accounts table lacks
# accounts whose buckets are broadcast to the tasks that read the other tables (about 12 bytes each: 240 MB at
# most); beyond, those tables are shuffled by account to meet the accounts (Spark's sort-merge join)
BROADCAST_ACCOUNTS = 20_000_000


def bucket_of(customer_id, buckets: int):
    """A Spark column: the customer's bucket, 0 .. buckets - 1, by Spark's own 64-bit hash (stable across runs
    and machines)."""
    from pyspark.sql import functions as sf

    return sf.pmod(sf.xxhash64(customer_id), sf.lit(buckets)).cast("int")


def read_table(spark, data: Path, name: str):
    """One table of the data folder as a Spark frame (Parquet: a file or a folder of parts), refused with the
    contract's message when it lacks a column the contract requires (before Spark is asked to read it)."""
    path = find_table(Path(data), name)
    if path is None or path.suffix == ".csv":
        what = "is not found" if path is None else "is a CSV file"
        raise ContractError([Problem(name, "", f"{what} in {data}: the Spark engine reads Parquet",
                                     hint=f"Write {name} as {name}.parquet or a folder {name}/ of Parquet parts.")])
    frame = spark.read.parquet(str(path))
    missing = missing_columns(pd.DataFrame(columns=frame.columns), SCHEMAS[name]) if name in SCHEMAS else None
    if missing is not None:
        raise ContractError([dataclasses.replace(missing, source=str(path))])
    return frame


def account_rows(data: Path) -> int:
    """The accounts table's rows, from its footers (a CSV is counted): what sizes the buckets and the join."""
    from features.extract_manifest import control_totals

    return control_totals(data, ["accounts"], sums=False)["accounts"]["rows"]


def tagged_tables(spark, data: Path, buckets: int, *, column: str = BUCKET) -> dict:
    """Each core table as a Spark frame with its customer's bucket in `column` (-1: the account is unknown).
    Up to BROADCAST_ACCOUNTS accounts (counted from the footers), the accounts' buckets are sent to every task,
    so the other tables join them where they are read, without a shuffle."""
    from pyspark.sql import functions as sf

    frames = {name: read_table(spark, data, name) for name in CORE_TABLES}
    tagged = {"accounts": frames["accounts"].withColumn(column, bucket_of(sf.col("customer_id"), buckets))}
    keys = tagged["accounts"].select("account_id", column)
    if account_rows(data) <= BROADCAST_ACCOUNTS:
        keys = sf.broadcast(keys)
    for name, frame in frames.items():
        if name != "accounts":
            tagged[name] = frame.join(keys, "account_id", "left").fillna({column: ORPHAN})
    return tagged


@contextmanager
def quiet():
    """pyspark's pandas-3 warning silenced (features.spark_session says why it does not concern us)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        yield
