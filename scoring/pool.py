"""Worker processes for the scoring job, startable before anything heavy is imported.

The job's modules take seconds to import (pandas, pyarrow, numba, LightGBM). Starting the workers first lets
them import while the parent imports, loads the model and plans the chunks. This module imports nothing
heavy itself, so a CLI can open the pool as its very first step.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """`workers` spawned processes, already importing the job; None for one worker (chunks run in-process).

    spawn: fresh interpreters, with no forked OpenMP or numba state.
    """
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare)
    try:
        for _ in range(workers):
            pool.submit(_prepare)  # the pool starts its processes at the first submit
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _prepare() -> None:
    """Import the job now, and keep Arrow to one thread: the workers already fill the cores."""
    import pyarrow as pa

    import scoring.worker  # noqa: F401

    pa.set_cpu_count(1)
