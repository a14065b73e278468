"""The contract's tables on Spark, grouped by customer: each group rebuilt as the contract's Tables where it runs.

Why: every per-account computation (features, labels, scores) needs all the accounts of a customer together,
and nothing more. A hash bucket of customers is such a group, so a cluster can hand each task one bucket and
run the project's own functions on it, unchanged.

How the rows travel: each table is read by Spark, each row tagged with its customer's bucket (accounts by a
hash of the customer; the other tables by a join with the accounts' ids, broadcast while they are small), and
packed on the executors, per table and bucket, into Arrow record batches (`_rows`, one binary value holding
many rows). The shuffle moves those few large values, not a wide row per bill: the tables' columns never
meet in one row. `group_tables` unpacks a group back into its tables, in the contract's types, and
`features.contract.validate` sorts them by their keys (Spark keeps no order). An extract laid out by bucket
(features.spark_layout) skips all of this: each task reads its buckets' files.

Rows of bills, payments or limits whose account the accounts table lacks get bucket -1: the group that holds
them is refused by the contract's check like any unknown account, never dropped by a join.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import CORE_TABLES, _arrow_to_pandas, find_table
from features.contract import read_table as read_contract_table
from features.spark_tables import BUCKET, quiet, tagged_tables

TABLE, ROWS = "_table", "_rows"
PACKED = f"{BUCKET} int, {TABLE} string, {ROWS} binary"  # the shuffled frame: a bucket's rows of one table
PACK_ROWS = 500_000  # rows an executor holds per table before it sends its packs on (a few tens of MB)


@dataclass(frozen=True)
class Buckets:
    """The groups a Spark job maps: packed rows (`PACKED`), partitioned by bucket; or, for an extract laid
    out by bucket (features.spark_layout), the bucket numbers, which each task reads from `folder` itself.
    With each table's Arrow schema (a group may hold no row of a table)."""

    frame: object  # pyspark DataFrame
    schemas: dict[str, pa.Schema]
    count: int
    folder: Path | None = None


def grouped(spark, data: Path, buckets: int) -> Buckets:
    """The extract's groups: read where they lie if it is laid out by bucket (then its own number of buckets
    holds, not `buckets`), else shuffled into `buckets` buckets (`bucketed`)."""
    from features.spark_layout import bucket_ids, check_layout, layout_of, table_schemas

    laid_out = layout_of(data)
    if laid_out is None:
        return bucketed(spark, data, buckets)
    check_layout(spark, data, laid_out)
    ids = bucket_ids(data)
    frame = spark.createDataFrame([(i,) for i in ids], f"{BUCKET} int").repartition(len(ids) or 1)
    return Buckets(frame, table_schemas(data), laid_out, Path(data))


def bucketed(spark, data: Path, buckets: int) -> Buckets:
    """The tables packed by customer bucket, partitioned by bucket: a task holds every pack of its buckets."""
    from pyspark.sql.pandas.types import to_arrow_schema

    packed, schemas = [], {}
    for name, frame in tagged_tables(spark, data, buckets).items():
        schemas[name] = to_arrow_schema(frame.drop(BUCKET).schema)
        with quiet():
            packed.append(frame.mapInArrow(_packer(name), PACKED))
    frame = reduce(lambda a, b: a.unionByName(b), packed).repartition(buckets, BUCKET)
    return Buckets(frame, schemas, buckets)


def _packer(name: str):
    def pack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from pack_rows(batches, name)

    return pack


def pack_rows(batches: Iterable[pa.RecordBatch], name: str, limit: int = PACK_ROWS) -> Iterator[pa.RecordBatch]:
    """Rows tagged with their bucket, packed per bucket into Arrow IPC streams (the bucket column dropped):
    held until `limit` rows are waiting, then sent on as one row per bucket."""
    held: dict[int, list[pa.RecordBatch]] = {}
    waiting = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        bucket = batch.column(BUCKET).to_numpy(zero_copy_only=False).astype(np.int64)
        rows = batch.drop_columns([BUCKET])
        order = np.argsort(bucket, kind="stable")
        values, starts = np.unique(bucket[order], return_index=True)
        ordered = rows.take(pa.array(order))
        for value, lo, hi in zip(values, starts, [*starts[1:], len(order)], strict=True):
            held.setdefault(int(value), []).append(ordered.slice(lo, hi - lo))
        waiting += batch.num_rows
        if waiting >= limit:
            yield _packs(held, name)
            held, waiting = {}, 0
    if held:
        yield _packs(held, name)


def _packs(held: dict[int, list[pa.RecordBatch]], name: str) -> pa.RecordBatch:
    """One row per bucket: its rows as one Arrow IPC stream, the streams laid end to end in one buffer."""
    sink, ends = pa.BufferOutputStream(), [0]
    for parts in held.values():
        with pa.ipc.new_stream(sink, parts[0].schema) as writer:
            for part in parts:
                writer.write_batch(part)
        ends.append(sink.tell())
    offsets = pa.py_buffer(np.asarray(ends, np.int32))  # int32 offsets: a pack of PACK_ROWS rows is far below 2 GB
    packs = pa.Array.from_buffers(pa.binary(), len(held), [None, offsets, sink.getvalue()])
    return pa.RecordBatch.from_arrays([pa.array(list(held), pa.int32()), pa.array([name] * len(held), pa.string()),
                                       packs], names=[BUCKET, TABLE, ROWS])


def map_groups(buckets: Buckets, func, schema):
    """Each group's tables mapped by `func(tables, bucket)` (pandas in the contract's types in, Arrow batches
    out), with pyspark's pandas-3 warning silenced: features.spark_session says why it does not concern us."""
    schemas, folder = buckets.schemas, buckets.folder
    if folder is None:
        # a partition holds every pack of its buckets: split here, without the sort Spark's groupBy would make
        def unpacked(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            packs = group_of(batches)
            for bucket in [] if packs is None else sorted(set(packs.column(BUCKET).to_pylist())):
                group = packs.filter(pc.equal(packs.column(BUCKET), bucket))
                yield from func(group_tables(group, schemas), bucket)

        with quiet():
            return buckets.frame.mapInArrow(unpacked, schema)

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from features.spark_layout import read_bucket

        for batch in batches:
            for bucket in batch.column(BUCKET).to_pylist():
                yield from func(read_bucket(folder, bucket, schemas), bucket)

    with quiet():
        return buckets.frame.mapInArrow(read, schema)


def group_tables(group: pa.Table, schemas: dict[str, pa.Schema]) -> dict[str, pd.DataFrame]:
    """A group's packs unpacked into its tables (pandas, the contract's reading of Arrow types), for
    `features.contract.validate`; a table the group holds no row of is empty, with its columns."""
    out = {}
    for name, schema in schemas.items():
        packs = group.filter(pc.equal(group.column(TABLE), name)).column(ROWS)
        parts = [pa.ipc.open_stream(pack.as_buffer()).read_all() for pack in packs]
        out[name] = _arrow_to_pandas(pa.concat_tables(parts) if parts else schema.empty_table())
    return out


def group_of(batches: Iterable[pa.RecordBatch]) -> pa.Table | None:
    """A group's record batches as one table (an empty group has none)."""
    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else None


class ByBucket:
    """Spark accumulator parameter: each group's summary (bytes) under its bucket. Merged by key, so a task that
    runs twice (a retry, a speculative copy) counts once; the driver adds the summaries up in bucket order."""

    def zero(self, value: dict) -> dict:
        return {}

    def addInPlace(self, merged: dict, update: dict) -> dict:  # noqa: N802 - Spark's name
        merged.update(update)
        return merged


def group_results(spark):
    """An accumulator the groups' functions add their summaries to, read on the driver once the job has run:
    the reduce travels beside the rows, so the groups are computed once, as their rows are written."""
    return spark.sparkContext.accumulator({}, ByBucket())


def shared_tables(data: Path) -> dict[str, pd.DataFrame]:
    """The tables every group reads whole: the economy (macro), a row per month, read on the driver and sent
    with the group's function (the accounts' tables are never read on the driver)."""
    path = find_table(Path(data), "macro")
    return {} if path is None else {"macro": read_contract_table(path, "macro")}


def table_sources(data: Path) -> dict[str, str]:
    """Each table's file, so a group's problems name it as the local engine's do."""
    return {name: str(path) for name in (*CORE_TABLES, "macro") if (path := find_table(Path(data), name)) is not None}
