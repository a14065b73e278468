"""Whole-extract checks and hashes on Spark, each piece of work done where the data lies.

A Spark job's groups see their own customers only; what needs the whole of a table (a bill id repeated in
two groups, the control totals' sums, the input fingerprint) is done here, by executors, with the same
functions and the same wording as on one machine. The driver reads footers and small results, never rows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
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
    it: every such row counted, the first repeated ids as samples), or None."""
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
    return repeated_bill_ids_problem(samples, found, bills.count(), str(find_table(Path(data), "bills")))


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
