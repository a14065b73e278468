"""Time-ordered slices with embargoes: train | gap | validation (+ calibration) | gap | out-of-time test.

Each slice is a run of as-of month ends. Between consecutive slices, `embargo` month ends are dropped: a
label as of T looks `window` months ahead, so without the gap the last training labels would be made of
the same months as the next slice's features, and validation would flatter the model.

Calibration needs rows the booster never saw. By default they are an account-disjoint half of the
validation months (cross-fitting: early stopping reads one half, the calibrator is fitted on the other),
which saves a slice and an embargo: on 36 months of history with a 6-month window that is 16 training
months instead of 4, and the trees learn from the long histories they will score. `calib > 0` gives
calibration months of its own instead, after an embargo, for histories long enough to afford them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.stable_hash import account_uniforms

SLICES = ("train", "valid", "calib", "test")
CALIB_SALT = "dynascore-calibration-half"


def calibration_half(account_id) -> np.ndarray:
    """True for the accounts whose validation-month rows calibrate (stable across runs and row orders)."""
    return account_uniforms(np.asarray(account_id, dtype=np.int64), CALIB_SALT) < 0.5


@dataclass(frozen=True)
class SlicePlan:
    months: dict[str, tuple[pd.Timestamp, pd.Timestamp]]  # slice -> (first, last) as-of month end
    embargo: int
    calib_split: bool = False  # calibration = an account-disjoint half of the validation months

    def assign(self, as_of: pd.Series, account_id=None) -> pd.Series:
        """The slice of each row ('' for rows in an embargo or outside the plan)."""
        out = pd.Series("", index=as_of.index, dtype=object)
        for name in ("train", "valid", "test") if self.calib_split else SLICES:
            lo, hi = self.months[name]
            out[(as_of >= lo) & (as_of <= hi)] = name
        if self.calib_split:
            if account_id is None:
                raise ValueError("this plan calibrates on half of the validation accounts: pass account_id")
            valid = np.flatnonzero((out == "valid").to_numpy())  # hashed only there: a ninth of the rows
            out.iloc[valid[calibration_half(np.asarray(account_id)[valid])]] = "calib"
        return out

    held_out = "out-of-time"  # what the 'test' rows are, in words

    def describe(self) -> str:
        spans = {k: f"{lo:%Y-%m}..{hi:%Y-%m}" for k, (lo, hi) in self.months.items()}
        if self.calib_split:
            spans["calib"] = "half of the validation accounts"
        return ", ".join(f"{k} {v}" for k, v in spans.items()) + f" (embargo {self.embargo} months between slices)"


class TooFewMonthsError(ValueError):
    """Fewer labelled as-of months than the slices in time need."""

    def __init__(self, have: int, need: int, parts: str) -> None:
        self.have, self.need, self.parts = have, need, parts
        super().__init__(f"{self.shortfall}: use a longer history or smaller slices, or split over accounts "
                         "([train] split = \"accounts\")")

    @property
    def shortfall(self) -> str:
        return (f"{self.have} as-of month{'s' if self.have != 1 else ''} with complete labels, but the slices in "
                f"time need {self.need} ({self.parts})")


def plan_slices(dates, embargo: int, valid: int = 4, calib: int = 0, test: int = 2, min_train: int = 3) -> SlicePlan:
    """Split sorted as-of month ends into the slices, newest last, with `embargo` months between.

    calib = 0 calibrates on an account-disjoint half of the validation months; calib > 0 on months of its own.
    """
    dates = sorted(pd.to_datetime(pd.Series(dates)).unique())
    gaps = 3 if calib else 2
    need = min_train + valid + calib + test + gaps * embargo
    if len(dates) < need:
        parts = f"{min_train}+ train, {valid} validation, " + (f"{calib} calibration, " if calib else "")
        raise TooFewMonthsError(len(dates), need, f"{parts}{test} test and {gaps} {embargo}-month embargoes")
    months, end = {}, len(dates)
    for name, size in (("test", test), ("calib", calib), ("valid", valid)):
        if size:
            months[name] = (dates[end - size], dates[end - 1])
            end -= size + embargo
    months["train"] = (dates[0], dates[end - 1])
    if not calib:
        months["calib"] = months["valid"]
    return SlicePlan({k: months[k] for k in SLICES}, embargo, calib_split=not calib)
