"""The score scale: points from probabilities, the way consumer-credit scores are read.

score = offset + factor * ln(good:bad odds), factor = PDO / ln 2: every PDO points double the odds.
Default: 600 points at 50:1 odds, PDO 40, clipped to 350..950 (how many were clipped is reported).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ScoreScale:
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 40.0
    lo: float = 350.0
    hi: float = 950.0

    def __post_init__(self) -> None:
        if self.pdo <= 0 or self.base_odds <= 0 or self.lo >= self.hi:
            raise ValueError(f"invalid score scale {self}: pdo and base_odds must be positive, lo < hi")

    @property
    def factor(self) -> float:
        return self.pdo / np.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * np.log(self.base_odds)

    def raw(self, p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
        return self.offset + self.factor * np.log((1 - p) / p)

    def score(self, p: np.ndarray) -> tuple[np.ndarray, int]:
        """Rounded, clipped scores and the number of clipped rows."""
        raw = self.raw(p)
        clipped = int(((raw < self.lo) | (raw > self.hi)).sum())
        return np.round(np.clip(raw, self.lo, self.hi)), clipped

    def probability(self, score: np.ndarray) -> np.ndarray:
        """The PD a score stands for (the inverse of `raw`)."""
        odds = np.exp((np.asarray(score, dtype=np.float64) - self.offset) / self.factor)
        return 1.0 / (1.0 + odds)

    def to_dict(self) -> dict:
        return asdict(self)
