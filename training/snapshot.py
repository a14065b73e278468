"""Training from a snapshot: account-disjoint cross-validation when the as-of months are too few for slices in time.

Why: a team with a monthly file and outcomes from elsewhere often has one as-of date, or a handful, where
slices in time need about two years of them. Rows of one account never sit on both sides of a split, so the
figures say how the model ranks accounts it has not seen.

Each account falls in one of `folds` folds by a hash of its id (stable across runs and row orders). Fit k holds
fold k out; fold k + 1, split account-disjointly in halves (`training.slices.calibration_half`), stops the
boosting on one half and fits the calibrator on the other; the remaining folds train. Together the held-out
folds give an out-of-fold probability for every labelled row, and the metrics (with account-bootstrap
intervals) read those. The model kept is fitted the same way with no fold held out: the last fold stops and
calibrates, the others train, so it learns from a fifth more rows than each fit that measured it.

What cross-validation cannot say: how the model holds up months later. Every fold shares the same as-of
dates, so there is no test in time; the nightly job's drift checks and the review of its score files say that.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.stable_hash import account_uniforms
from training.slices import SLICES, calibration_half

FOLD_SALT = "dynascore-snapshot-folds"


def account_folds(account_id, folds: int) -> np.ndarray:
    """Each row's fold, 0 .. folds - 1, by a hash of its account (the same account, the same fold)."""
    u = account_uniforms(np.asarray(account_id, dtype=np.int64), FOLD_SALT)
    return np.minimum((u * folds).astype(np.int64), folds - 1)


@dataclass(frozen=True)
class SnapshotPlan:
    """Cross-validation over accounts, for as-of dates too few for slices in time (`why` says how few)."""

    first: pd.Timestamp
    last: pd.Timestamp
    folds: int
    why: str
    embargo: int = 0  # no slices in time, so no gap between them
    held_out = "out-of-fold"  # what the 'test' rows are, in words

    @property
    def months(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        """Every slice spans the same as-of months: the folds split accounts, not time."""
        return {s: (self.first, self.last) for s in SLICES}

    def assign(self, as_of: pd.Series, account_id=None) -> pd.Series:
        """The kept model's slice of each row: the last fold stops ('valid') and calibrates ('calib') by halves,
        the others train; 'test' holds none (the out-of-fold rows are every fold's, see `fit_rows`)."""
        if account_id is None:
            raise ValueError("cross-validation splits accounts: pass account_id")
        account_id = np.asarray(account_id)
        fold = account_folds(account_id, self.folds)
        out = np.where(fold == self.folds - 1, np.where(calibration_half(account_id), "calib", "valid"), "train")
        return pd.Series(out.astype(object), index=as_of.index)

    def fit_rows(self, k: int, rows: np.ndarray, account_id: np.ndarray) -> dict[str, np.ndarray]:
        """Fit k's slices among `rows` (positions whose accounts are `account_id`): fold k tests, fold k + 1 stops
        and calibrates by halves, the rest train."""
        fold = account_folds(account_id, self.folds)
        nxt = fold == (k + 1) % self.folds
        half = calibration_half(account_id)
        return {"train": rows[(fold != k) & ~nxt], "valid": rows[nxt & ~half], "calib": rows[nxt & half],
                "test": rows[fold == k]}

    def describe(self) -> str:
        span = f"{self.first:%Y-%m}" + (f"..{self.last:%Y-%m}" if self.last != self.first else "")
        return (f"cross-validation over accounts, as of {span}: {self.folds} account-disjoint folds; each fit trains "
                f"on {self.folds - 2}, stops early on half of the next and calibrates on its other half; metrics "
                f"out of fold (chosen because {self.why})")
