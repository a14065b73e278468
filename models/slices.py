"""Time-ordered slices with embargoes: train | gap | validation | gap | calibration | gap | out-of-time test.

Each slice is a run of as-of month ends. Between consecutive slices, `embargo` month ends are dropped: a
label as of T looks `window` months ahead, so without the gap the last training labels would be made of
the same months as the next slice's features, and validation would flatter the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SLICES = ("train", "valid", "calib", "test")


@dataclass(frozen=True)
class SlicePlan:
    months: dict[str, tuple[pd.Timestamp, pd.Timestamp]]  # slice -> (first, last) as-of month end
    embargo: int

    def assign(self, as_of: pd.Series) -> pd.Series:
        """The slice of each row ('' for rows in an embargo or outside the plan)."""
        out = pd.Series("", index=as_of.index, dtype=object)
        for name, (lo, hi) in self.months.items():
            out[(as_of >= lo) & (as_of <= hi)] = name
        return out

    def describe(self) -> str:
        return ", ".join(f"{k} {lo:%Y-%m}..{hi:%Y-%m}" for k, (lo, hi) in self.months.items()) + \
            f" (embargo {self.embargo} months between slices)"


def plan_slices(dates, embargo: int, valid: int = 2, calib: int = 2, test: int = 2, min_train: int = 3) -> SlicePlan:
    """Split sorted as-of month ends into the four slices, newest last, with `embargo` months between."""
    dates = sorted(pd.to_datetime(pd.Series(dates)).unique())
    need = min_train + valid + calib + test + 3 * embargo
    if len(dates) < need:
        raise ValueError(f"{len(dates)} as-of months with complete labels, but the slices need {need} "
                         f"({min_train}+ train, {valid} validation, {calib} calibration, {test} test and three "
                         f"{embargo}-month embargoes): use a longer history or smaller slices")
    months, end = {}, len(dates)
    for name, size in (("test", test), ("calib", calib), ("valid", valid)):
        months[name] = (dates[end - size], dates[end - 1])
        end -= size + embargo
    months["train"] = (dates[0], dates[end - 1])
    return SlicePlan({k: months[k] for k in SLICES}, embargo)
