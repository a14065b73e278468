"""An extract laid out by customer bucket, so that Spark jobs read it without a shuffle.

Why: grouping every row by customer is the costly part of a Spark job (the tables are read, joined to the
accounts' buckets and moved across the cluster). A warehouse can do it once, when the extract lands, and the
nightly jobs and panel builds then read each bucket where it lies: each task reads its bucket's files with the
contract's own reader, as the local engine reads a chunk.

The layout: each core table is a folder with one sub-folder per bucket, `bills/bucket=7/part-*.parquet` (the
Hive convention, so Spark, pyarrow and the local engine all read the folder as the whole table), and
`_buckets.json` at the top says how the buckets were made: Spark's 64-bit xxhash of the customer id, modulo
the number of buckets (features.spark_groups.bucket_of). Rows of an account the accounts table lacks go to
`bucket=-1`, whose group the contract refuses. Everything else in the extract's folder (its manifest, the
macro table) is copied unchanged: the control totals still hold, since no row is added or lost.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.atomic_folder import hidden_beside, swap_in
from features.contract import CORE_TABLES, ContractError, Problem, _arrow_to_pandas, find_table, part_files
from features.contract import read_table as read_contract_table

LAYOUT = "_buckets.json"
FOLDER = "bucket"  # bucket=K
HASH = "spark xxhash64(customer_id) pmod buckets"
FORMAT = 1


def layout_of(data: Path) -> int | None:
    """The number of buckets of a bucketed extract, or None when `data` is not laid out by bucket."""
    path = Path(data) / LAYOUT
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ContractError([Problem("data", "", f"{path} cannot be read: {exc}",
                                     hint="Re-bucket the extract: python -m features bucket DATA OUT.")]) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT or info.get("hash") != HASH:
        raise ContractError([Problem("data", "", f"{path} does not describe buckets this version reads "
                                     f"(format {FORMAT}, hash {HASH!r})",
                                     hint="Re-bucket the extract: python -m features bucket DATA OUT.")])
    return int(info["buckets"])


def bucket_ids(data: Path) -> list[int]:
    """Every bucket a table of the extract holds rows in (the orphans' bucket -1 included), from the folders."""
    found = set()
    for name in CORE_TABLES:
        path = find_table(Path(data), name)
        if path is not None and path.is_dir():
            found |= {int(p.name.split("=", 1)[1]) for p in path.glob(f"{FOLDER}=*") if p.is_dir()}
    return sorted(found)


def table_schemas(data: Path) -> dict[str, pa.Schema]:
    """Each core table's columns, from one footer each (a bucket may hold no row of a table)."""
    out = {}
    for name in CORE_TABLES:
        path = find_table(Path(data), name)
        parts = part_files(path) if path is not None and path.is_dir() else []
        if not parts:
            raise ContractError([Problem(name, "", f"holds no part file under {data}/{name}/{FOLDER}=*",
                                         hint="Re-bucket the extract: python -m features bucket DATA OUT.")])
        out[name] = pq.read_schema(parts[0]).remove_metadata()
    return out


def read_bucket(data: Path, bucket: int, schemas: dict[str, pa.Schema]) -> dict[str, pd.DataFrame]:
    """One bucket's rows of every core table, read by the contract's reader (empty where it holds none)."""
    out = {}
    for name, schema in schemas.items():
        folder = Path(data) / name / f"{FOLDER}={bucket}"
        out[name] = (read_contract_table(folder, name) if folder.is_dir()
                     else _arrow_to_pandas(schema.empty_table()))
    return out


def check_layout(spark, data: Path, buckets: int) -> None:
    """Refuse an extract whose accounts lie in other buckets than their customers' hash says: a customer split
    across buckets would be scored on part of its accounts. (Rows of the other tables in a wrong bucket are
    refused by the contract, as accounts their group lacks.)"""
    from pyspark.sql import functions as sf

    from features.spark_tables import bucket_of

    path = find_table(Path(data), "accounts")
    accounts = spark.read.parquet(str(path))
    wrong = accounts.where(sf.col(FOLDER) != bucket_of(sf.col("customer_id"), buckets)).count()
    if wrong:
        raise ContractError([Problem("accounts", "customer_id", f"lies in another bucket than its hash gives "
                                     f"({buckets:,} buckets, {LAYOUT})", wrong, accounts.count(), source=str(path),
                                     hint="Re-bucket the extract: python -m features bucket DATA OUT.")])


def refuse_laid_out(data: Path) -> None:
    """An extract laid out by bucket already is not laid out again (its folders are not the contract's tables)."""
    laid = layout_of(data)
    if laid is not None:
        raise ContractError([Problem("data", "", f"{data} is laid out by bucket already ({laid:,} buckets, {LAYOUT})",
                                     hint="Score it as it is, or lay out the original extract again.")])


def write_bucketed(spark, data: Path, out: Path, buckets: int) -> dict:
    """Lay the extract in `data` out by customer bucket into `out` (written hidden beside it, then renamed into
    place); return what `_buckets.json` holds."""
    from features.spark_tables import tagged_tables

    data, out = Path(data), Path(out)
    refuse_laid_out(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = hidden_beside(out)
    try:
        for name, frame in tagged_tables(spark, data, buckets, column=FOLDER).items():
            frame.repartition(FOLDER).sortWithinPartitions(FOLDER, "account_id") \
                .write.partitionBy(FOLDER).parquet(str(tmp / name))
        laid = {find_table(data, name) for name in CORE_TABLES}
        for path in sorted(data.iterdir()):  # the manifest, macro and any other table, unchanged
            if path not in laid and not path.name.startswith(".") and path.name != LAYOUT:
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / path.name)
        info = {"format": FORMAT, "buckets": buckets, "hash": HASH, "by": "customer_id", "from": str(data)}
        (tmp / LAYOUT).write_text(json.dumps(info, indent=1))
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info
