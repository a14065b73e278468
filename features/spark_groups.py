"""The contract's tables on Spark, grouped by customer: each group rebuilt as the contract's Tables where it runs.

Why: every per-account computation (features, labels, scores) needs all the accounts of a customer together,
and nothing more. A hash bucket of customers is such a group, so a cluster can hand each task one bucket and
run the project's own functions on it, unchanged. The tables travel as one Spark frame: each row tagged with its
table (`_table`) and its customer's bucket (`_bucket`), its columns prefixed with the table's name (so that the
tables' columns never collide); `group_tables` splits a group's rows back into the tables, in the contract's
types, sorted as `features.contract.validate` sorts them (Spark keeps no order).

Rows of bills, payments or limits whose account the accounts table lacks get bucket -1: the group that holds
them is refused by the contract's check like any unknown account, never dropped by a join.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from functools import reduce
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import CORE_TABLES, ContractError, Problem, _arrow_to_pandas, find_table
from features.contract import read_table as read_contract_table
from features.spark_session import PANDAS_WARNING

BUCKET, TABLE = "_bucket", "_table"
SEP = "__"  # table__column: Spark reads a dot in a name as a struct field
ORPHAN = -1  # the bucket of rows whose account the accounts table lacks


def bucket_of(customer_id, buckets: int):
    """A Spark column: the customer's bucket, 0 .. buckets - 1, by Spark's own 64-bit hash (stable across runs
    and machines)."""
    from pyspark.sql import functions as sf

    return sf.pmod(sf.xxhash64(customer_id), sf.lit(buckets)).cast("int")


def read_table(spark, data: Path, name: str):
    """One table of the data folder as a Spark frame (Parquet: a file or a folder of parts)."""
    path = find_table(Path(data), name)
    if path is None or path.suffix == ".csv":
        what = "is not found" if path is None else "is a CSV file"
        raise ContractError([Problem(name, "", f"{what} in {data}: the Spark engine reads Parquet",
                                     hint=f"Write {name} as {name}.parquet or a folder {name}/ of Parquet parts.")])
    return spark.read.parquet(str(path))


def bucketed(spark, data: Path, buckets: int, tables: Iterable[str] = CORE_TABLES):
    """The tables as one Spark frame of tagged, prefixed rows with the bucket of each row's customer."""
    from pyspark.sql import functions as sf

    frames = {name: read_table(spark, data, name) for name in tables}
    accounts = frames["accounts"].withColumn(BUCKET, bucket_of(sf.col("customer_id"), buckets))
    keys = accounts.select("account_id", BUCKET)
    parts = []
    for name, frame in frames.items():
        frame = accounts if name == "accounts" else frame.join(keys, "account_id", "left").fillna({BUCKET: ORPHAN})
        columns = [sf.col(c).alias(f"{name}{SEP}{c}") for c in frame.columns if c != BUCKET]
        parts.append(frame.select(sf.lit(name).alias(TABLE), sf.col(BUCKET), *columns))
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)


def map_groups(frame, func, schema):
    """`frame` (from `bucketed`) grouped by bucket, each group mapped by `func` (Arrow batches in, Arrow batches
    out), with pyspark's pandas-3 warning silenced: features.spark_session says why it does not concern us."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
        return frame.groupBy(BUCKET).applyInArrow(func, schema)


def group_tables(group: pa.Table, tables: Iterable[str] = CORE_TABLES) -> dict[str, pd.DataFrame]:
    """A group's rows split back into its tables (pandas, the contract's reading of Arrow types), each with its
    own columns only, unprefixed, for `features.contract.validate`."""
    out = {}
    for name in tables:
        rows = group.filter(pc.equal(group.column(TABLE), name))
        prefix = f"{name}{SEP}"
        own = [c for c in group.column_names if c.startswith(prefix)]
        out[name] = _arrow_to_pandas(rows.select(own).rename_columns([c[len(prefix):] for c in own]))
    return out


def group_of(batches: Iterable[pa.RecordBatch]) -> pa.Table:
    """A group's record batches as one table (an empty group has none)."""
    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else None


def shared_tables(data: Path) -> dict[str, pd.DataFrame]:
    """The tables every group reads whole: the economy (macro), a row per month, read on the driver and sent
    with the group's function (the accounts' tables are never read on the driver)."""
    path = find_table(Path(data), "macro")
    return {} if path is None else {"macro": read_contract_table(path, "macro")}


def table_sources(data: Path) -> dict[str, str]:
    """Each table's file, so a group's problems name it as the local engine's do."""
    return {name: str(path) for name in (*CORE_TABLES, "macro") if (path := find_table(Path(data), name)) is not None}
