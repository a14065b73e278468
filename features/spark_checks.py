"""Whole-extract checks and hashes on Spark, each piece of work done where the data lies.

A Spark job's groups see their own customers only; what needs the whole of a table (a bill id repeated in
two groups, the control totals' sums, the input fingerprint) is done here, by executors, with the same
functions and the same wording as on one machine. The driver reads footers and small results, never rows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import pairwise
from pathlib import Path

import pyarrow as pa

from features.contract import SAMPLE, ContractError, Problem, find_table, part_files
from features.file_digest import sha256
from features.problem_tally import repeated_bill_ids_problem


def on_executors(spark) -> Callable[[Callable, Iterable], list]:
    """A map(func, items) run by Spark's tasks, a few items each, that returns the results in order: what
    `features.extract_manifest.control_totals` takes to sum its row groups on a cluster."""
    def mapper(func: Callable, items: Iterable) -> list:
        items = list(items)
        if not items:
            return []
        slices = min(len(items), 4 * spark.sparkContext.defaultParallelism)
        return spark.sparkContext.parallelize(items, slices).map(func).collect()

    return mapper


def repeated_bill_ids(spark, data: Path) -> Problem | None:
    """The Problem of bill ids held by more than one row of the whole bills table (as the local engine words
    it: every such row counted, the first repeated ids as samples), or None.

    An extract written in bill-id order has row groups whose id ranges, in the footers, do not overlap: then
    no id can repeat across row groups, and each row group is checked alone, by a task. Otherwise the ids are
    read by tasks, row group by row group, sent on packed by their remainder modulo a number of slices (every
    copy of an id lands in one slice), and each slice is sorted and counted apart."""
    import pyarrow.parquet as pq

    path = find_table(Path(data), "bills")
    groups = _row_groups(path)
    units = [(str(file), group) for file, group, _, _ in groups]
    ranged = all(lo is not None for _, _, lo, _ in groups)
    if ranged and _disjoint(groups) and not any(on_executors(spark)(_repeats_in, units)):
        return None
    total = sum(pq.ParquetFile(file).metadata.num_rows for file in (part_files(path) if path.is_dir() else [path]))
    rows, samples = _count_repeats(spark, units, slices=max(1, total // ID_SLICE))
    return repeated_bill_ids_problem(samples, rows, total, str(path)) if rows else None


ID_SLICE = 4_000_000  # ids a slice sorts at once (32 MB)
_SLICE, _IDS = "_slice", "_ids"


def _row_groups(path: Path) -> list[tuple[Path, int, int | None, int | None]]:
    """(file, row group, least id, greatest id) of every non-empty row group, from the footers (None where
    the footer keeps no statistics)."""
    import pyarrow.parquet as pq

    if path.suffix == ".csv":
        raise ContractError([Problem("bills", "", f"is a CSV file ({path}): the Spark engine reads Parquet",
                                     hint="Write bills as bills.parquet or a folder bills/ of Parquet parts.")])
    out = []
    for file in part_files(path) if path.is_dir() else [path]:
        meta = pq.ParquetFile(file).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        column = names.index("bill_id") if "bill_id" in names else None
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(column) if column is not None else None
            if chunk is None or chunk.num_values == 0:
                continue
            known = chunk.statistics is not None and chunk.statistics.has_min_max
            out.append((file, group, int(chunk.statistics.min) if known else None,
                        int(chunk.statistics.max) if known else None))
    return out


def _disjoint(groups: list[tuple[Path, int, int, int]]) -> bool:
    ranges = sorted((lo, hi) for _, _, lo, hi in groups)
    return all(lo > previous_hi for (_, previous_hi), (lo, _) in pairwise(ranges))


def _repeats_in(unit: tuple[str, int]) -> bool:
    """Whether a bill id repeats inside one row group."""
    import numpy as np

    ids = _ids(unit)
    return bool(len(ids) and (np.diff(np.sort(ids)) == 0).any())


def _ids(unit: tuple[str, int]):
    """The bill ids of one row group of one part (nulls left out: the contract counts those)."""
    import pyarrow.parquet as pq

    file, group = unit
    return pq.ParquetFile(file).read_row_group(group, columns=["bill_id"]).column(0).drop_null().to_numpy()


def _count_repeats(spark, units: list[tuple[str, int]], slices: int) -> tuple[int, list[int]]:
    """(rows whose id repeats, the least SAMPLE repeated ids) over all `units`, on Spark's tasks."""
    from features.spark_tables import quiet

    frame = spark.createDataFrame(units, "file string, row_group int")
    frame = frame.repartition(min(len(units), 4 * spark.sparkContext.defaultParallelism) or 1)
    with quiet():
        split = frame.mapInArrow(_slicer(slices), f"{_SLICE} int, {_IDS} binary")
        counted = split.repartition(slices, _SLICE).groupBy(_SLICE).applyInArrow(
            _counter, "rows long, samples array<long>")
    rows, samples = 0, []
    for row in counted.collect():
        rows += row["rows"]
        samples += row["samples"]
    return rows, sorted(samples)[:SAMPLE]


def _slicer(slices: int):
    """A task's row groups' ids, sent on as one packed value per slice (an id's slice: its remainder modulo
    `slices`, so every copy of an id meets the others)."""
    def split(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numpy as np

        for batch in batches:
            for file, group in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                ids = _ids((file, group)).astype(np.int64, copy=False)
                which = np.mod(ids, slices)
                present = np.unique(which)
                packs = pa.array([ids[which == k].tobytes() for k in present], pa.binary())
                yield pa.RecordBatch.from_arrays([pa.array(present, pa.int32()), packs], names=[_SLICE, _IDS])

    return split


def _counter(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One slice's ids sorted and counted: the rows whose id repeats, and the least repeated ids."""
    import numpy as np

    parts = [np.frombuffer(blob.as_py(), np.int64) for batch in batches for blob in batch.column(1)]
    values, counts = np.unique(np.concatenate(parts) if parts else np.empty(0, np.int64), return_counts=True)
    repeated = counts > 1
    yield pa.RecordBatch.from_arrays([pa.array([int(counts[repeated].sum())], pa.int64()),
                                      pa.array([values[repeated][:SAMPLE].tolist()], pa.list_(pa.int64()))],
                                     names=["rows", "samples"])


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
