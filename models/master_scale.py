"""The master scale: PD grades, declared once.

A grade is a band of probability of default with fixed bounds, the unit a credit committee, a validator and a
supervisor talk in: per-grade calibration tests (Jeffreys, binomial, traffic lights), grade migration, the
concentration of the book, limit actions by grade. Twelve grades whose upper bounds roughly double, from
0.1 % to certain default; grade 1 is the safest. Each grade also spans a range of scores on the bundle's score
scale (`score_bounds`), so a policy written in scores can be read in grades and the other way round.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.scale import ScoreScale

__all__ = ["MASTER_SCALE", "MasterScale"]


@dataclass(frozen=True)
class MasterScale:
    """Grades 1..K: grade k holds PDs in [upper[k-2], upper[k-1]) (grade 1 from 0), the last grade up to 1."""

    upper: tuple[float, ...]

    def __post_init__(self) -> None:
        bounds = np.asarray(self.upper)
        if len(bounds) < 2 or bounds[-1] != 1.0 or np.any(np.diff(bounds) <= 0) or bounds[0] <= 0:
            raise ValueError(f"master scale bounds must rise strictly from above 0 to 1, got {self.upper}")

    @property
    def n_grades(self) -> int:
        return len(self.upper)

    @property
    def lower(self) -> tuple[float, ...]:
        return (0.0, *self.upper[:-1])

    @property
    def grades(self) -> list[int]:
        return list(range(1, self.n_grades + 1))

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        """The grade (1..K) of each PD; 0 where the PD is missing."""
        p = np.asarray(pd_, dtype=np.float64)
        out = np.searchsorted(np.asarray(self.upper[:-1]), p, side="right") + 1
        return np.where(np.isnan(p), 0, out).astype(np.int8)

    def midpoint(self) -> np.ndarray:
        """A grade's representative PD: the geometric mean of its bounds (the last grade's lower bound doubled,
        capped at 1, stands in for its open top)."""
        lo = np.asarray(self.lower)
        hi = np.asarray(self.upper, dtype=np.float64)
        lo[0] = hi[0] / 2
        return np.sqrt(lo * np.minimum(hi, 2 * lo))

    def label(self, grade: int) -> str:
        lo, hi = self.lower[grade - 1], self.upper[grade - 1]
        return f"{grade} ({_pct(lo)}–{_pct(hi)})"

    def score_bounds(self, scale: ScoreScale) -> list[tuple[float, float]]:
        """Each grade's scores on `scale`: (lowest, highest) of the unclipped score of its PD range."""
        hi = scale.raw(np.asarray(self.lower, dtype=np.float64))  # the safest PD of a grade has its highest score
        lo = scale.raw(np.asarray(self.upper, dtype=np.float64))
        return [(float(max(a, scale.lo)), float(min(b, scale.hi))) for a, b in zip(lo, hi, strict=True)]

    def to_dict(self) -> dict:
        return {"upper": list(self.upper)}


def _pct(p: float) -> str:
    if p >= 1:
        return "100 %"
    return f"{100 * p:.2g} %" if p < 0.1 else f"{100 * p:.0f} %"


MASTER_SCALE = MasterScale((0.001, 0.002, 0.004, 0.007, 0.012, 0.02, 0.035, 0.06, 0.10, 0.18, 0.35, 1.0))
