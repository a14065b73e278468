"""The map step of the local engine, as a worker process runs it: read one chunk's rows, then score them.

Kept apart from the job so that worker processes import only what they run, and the pool can warm them up
without importing the job that owns the pool.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.builders import Prepared, build_block
from features.catalog import default_catalog
from features.contract import ContractError, load_tables
from features.extra import ExtraColumns
from features.stopwatch import Stopwatch
from scoring.chunk import STAGES, ChunkOutput, ChunkSpec, score_chunk
from scoring.errors import ScoreError


@dataclass(frozen=True)
class ChunkTask:
    """One chunk for a worker: where its rows are, and the run's shared spec."""

    data: Path
    lo: int
    hi: int
    spec: ChunkSpec
    previous: tuple[np.ndarray, np.ndarray] | None  # the slice of a given previous output
    extra: ExtraColumns | None = None  # the extra columns' rows of these accounts (a slice, not the whole file)


def read_and_score(task: ChunkTask) -> ChunkOutput:
    """The map step: read the accounts lo <= account_id < hi, then score them (runs in a worker process).
    Rows that break the contract are not scored: their problems go back to be added up over all chunks."""
    watch = Stopwatch(STAGES)
    try:
        tables = load_tables(task.data, account_range=(task.lo, task.hi), extraction=task.spec.extraction)
    except ContractError as exc:
        watch.lap("read")
        return ChunkOutput.refused(exc.problems, dict(watch.seconds))
    watch.lap("read")
    try:
        return score_chunk(tables, task.spec, task.previous, extra=task.extra, watch=watch)
    except ValueError as exc:  # a plain message: custom exceptions cross processes badly
        raise ScoreError(str(exc)) from None


def warm(data: Path) -> None:
    """Read the lowest account ids' rows of `data` and build their features, and forget them.

    A process's first read and first feature build pay one-time costs (Arrow's Parquet readers, the compiled
    kernels loaded from numba's cache): about a second on the first chunk. A worker warms while the parent
    still plans, so its first chunk starts warm. Any problem is left to the job, which reports it.
    """
    try:
        tables = load_tables(data, account_range=(0, 2))
        if len(tables.accounts):
            prep = Prepared(tables)
            build_block(prep, [np.datetime64(prep.extraction.date(), "D")], default_catalog())
    except Exception:  # a warm-up only: the job reads the same data and says what is wrong
        pass
