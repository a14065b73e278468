"""One stopwatch for stage timings: training's stages, scoring's worker seconds, the benches' splits.

It lives on the ground floor because every job above times itself with it, and one way of counting means
the manifest, the mlflow run and the benches add up the same seconds.
"""
from __future__ import annotations

import time


class Stopwatch:
    """Seconds per stage: each lap closes the stage begun at the previous lap (or at the start)."""

    def __init__(self, stages=()) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(stages, 0.0)
        self._t = time.perf_counter()

    def lap(self, stage: str) -> float:
        """Add the time since the last lap to `stage`; returns the stage's total so far."""
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._t
        self._t = now
        return self.seconds[stage]

    __call__ = lap

    def restart(self) -> None:
        """Start the next stage now (time since the last lap is counted nowhere)."""
        self._t = time.perf_counter()
