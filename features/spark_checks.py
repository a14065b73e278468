"""Whole-extract checks and hashes on Spark, each piece of work done where the data lies.

A Spark job's groups see their own customers only; what needs the whole of a table (a bill id repeated in
two groups, the control totals' sums, the input fingerprint) is done here, by executors, with the same
functions and the same wording as on one machine. The driver reads footers and small results, never rows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise
from pathlib import Path

from features.contract import SAMPLE, Problem, find_table, part_files
from features.file_digest import sha256
from features.problem_tally import repeated_bill_ids_problem


def on_executors(spark) -> Callable[[Callable, Iterable], list]:
    """A map(func, items) that runs each item as one Spark task and returns the results in order: what
    `features.extract_manifest.control_totals` takes to sum its row groups on a cluster."""
    def mapper(func: Callable, items: Iterable) -> list:
        items = list(items)
        return spark.sparkContext.parallelize(items, len(items)).map(func).collect() if items else []

    return mapper


def repeated_bill_ids(spark, data: Path) -> Problem | None:
    """The Problem of bill ids held by more than one row of the whole bills table (as the local engine words
    it: every such row counted, the first repeated ids as samples), or None.

    An extract written in bill-id order has row groups whose id ranges, in the footers, do not overlap: then
    no id can repeat across row groups, and each row group is checked alone, by a task. Otherwise, or when a
    repeat is found, Spark counts every id over the whole table."""
    path = find_table(Path(data), "bills")
    groups = _row_group_ranges(path)
    units = [(str(file), group) for file, group, _, _ in groups or ()]
    if groups is not None and _disjoint(groups) and not any(on_executors(spark)(_repeats_in, units)):
        return None
    return _counted_by_spark(spark, data, path)


def _row_group_ranges(path: Path) -> list[tuple[Path, int, int, int]] | None:
    """(file, row group, least id, greatest id) of every non-empty row group, from the footers; None when a
    row group has no statistics or the table is not Parquet."""
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        return None
    out = []
    for file in part_files(path) if path.is_dir() else [path]:
        meta = pq.ParquetFile(file).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if "bill_id" not in names:
            return None
        column = names.index("bill_id")
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(column)
            if chunk.num_values == 0:
                continue
            if chunk.statistics is None or not chunk.statistics.has_min_max:
                return None
            out.append((file, group, int(chunk.statistics.min), int(chunk.statistics.max)))
    return out


def _disjoint(groups: list[tuple[Path, int, int, int]]) -> bool:
    ranges = sorted((lo, hi) for _, _, lo, hi in groups)
    return all(lo > previous_hi for (_, previous_hi), (lo, _) in pairwise(ranges))


def _repeats_in(unit: tuple[str, int]) -> bool:
    """Whether a bill id repeats inside one row group."""
    import numpy as np
    import pyarrow.parquet as pq

    file, group = unit
    ids = pq.ParquetFile(file).read_row_group(group, columns=["bill_id"]).column(0).drop_null().to_numpy()
    return bool(len(ids) and (np.diff(np.sort(ids)) == 0).any())


def _counted_by_spark(spark, data: Path, path: Path) -> Problem | None:
    from pyspark.sql import functions as sf

    from features.spark_groups import read_table

    bills = read_table(spark, data, "bills")
    repeated = bills.where(sf.col("bill_id").isNotNull()).groupBy("bill_id").count().where(sf.col("count") > 1)
    repeated = repeated.persist()
    try:
        found = repeated.agg(sf.sum("count").alias("rows")).first()["rows"]
        if not found:
            return None
        samples = [row["bill_id"] for row in repeated.orderBy("bill_id").select("bill_id").limit(SAMPLE).collect()]
    finally:
        repeated.unpersist()
    return repeated_bill_ids_problem(samples, found, bills.count(), str(path))


def file_digests(spark, data: Path, tables: Iterable[str]) -> list[tuple[str, str]]:
    """(name relative to `data`, SHA-256) of every file of the tables, each file hashed by an executor."""
    data = Path(data)
    files = []
    for name in tables:
        path = find_table(data, name)
        if path is not None:
            files += part_files(path) if path.is_dir() else [path]
    named = [(p.relative_to(data).as_posix(), str(p)) for p in files]
    return on_executors(spark)(_digest, named)


def _digest(item: tuple[str, str]) -> tuple[str, str]:
    name, path = item
    return name, sha256(Path(path))
