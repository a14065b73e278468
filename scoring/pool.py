"""Worker processes for the scoring job, startable before anything heavy is imported.

The job's modules take seconds to import (pandas, pyarrow, numba). Starting the workers first lets
them import while the parent imports, loads the model and plans the chunks. This module imports nothing
heavy itself, so a CLI can open the pool as its very first step.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def worker_pool(workers: int, data: Path | None = None) -> Iterator[ProcessPoolExecutor | None]:
    """`workers` spawned processes, already importing the job; None for one worker (chunks run in-process).

    spawn: fresh interpreters, with no forked OpenMP or numba state. With `data`, each worker also reads a
    few accounts of it while the parent plans (scoring.worker.warm).
    """
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare,
                               initargs=(data,))
    try:
        for _ in range(workers):
            pool.submit(_started)  # the pool starts its processes at the first submits
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _prepare(data: Path | None) -> None:
    """Import the job now, keep Arrow to one thread (the workers already fill the cores), warm on `data`."""
    import pyarrow as pa

    from scoring.worker import warm

    pa.set_cpu_count(1)
    if data is not None:
        warm(data)


def _started() -> None:
    """Nothing: a task to make the pool start a process."""
