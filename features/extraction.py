"""The extraction date: the day an extract was taken, after which nothing in it can be known.

It is stated -- by the user (`--extracted-on`) or by the extract's own manifest -- or, absent both, derived
from event dates only (openings, statements, conversions, payments, limit changes, charge-offs, closings;
never due dates, which lie ahead by design) and never later than today. One far-future date must not move it:
a `9999-12-31` written for "no charge-off" would have the nightly job score every account as of the year 9999.
So placeholders are read as missing, an event after the extraction date is refused, and a due date may lie
at most the longest product term after it. Scoring, training and validation all resolve it here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.calendar_day import calendar_day

# the columns whose dates are events a lender has seen; the extraction date is never before any of them
EVENT_COLUMNS = {"accounts": ("open_date", "charge_off_date", "close_date"),
                 "bills": ("statement_date", "converted_date"), "payments": ("payment_date",),
                 "limits": ("effective_date",)}
# written by warehouses for "none" in optional date columns; read as missing there
PLACEHOLDER_DATES = ("9999-12-31", "9999-12-30", "2999-12-31")
# the longest term of any product the contract takes (cash loans of up to 60 monthly installments): a bill
# may fall due at most this long after the extraction date
LONGEST_TERM_MONTHS = 60
STATED, MANIFEST, DERIVED = "--extracted-on", "the extract's manifest", "derived from the latest event date"


@dataclass(frozen=True)
class Extraction:
    """The extraction date and where it came from (for the manifest, and for the warning when derived)."""

    day: pd.Timestamp
    source: str

    @property
    def derived(self) -> bool:
        return self.source == DERIVED

    @property
    def latest_due(self) -> pd.Timestamp:
        """The last due date an extract taken on `day` may hold."""
        return self.day + pd.DateOffset(months=LONGEST_TERM_MONTHS)

    @property
    def note(self) -> str:
        """What a user should know about how it was found: a warning when it is derived."""
        if self.derived:
            return (f"the extraction date is not stated (--extracted-on, or extraction_date in the extract's "
                    f"_manifest.json): taken as {self.text}, the latest event date in the data")
        return f"extraction date {self.text} ({self.source})"

    @property
    def text(self) -> str:
        return f"{self.day:%Y-%m-%d}"

    def to_dict(self) -> dict:
        return {"date": self.text, "source": self.source}


def parse_day(text: str, what: str) -> pd.Timestamp:
    """A calendar day written as YYYY-MM-DD (features.calendar_day), or a ValueError naming `what`."""
    return pd.Timestamp(calendar_day(text, what))


def resolve(stated: Extraction | None, latest_event: pd.Timestamp | None,
            today: pd.Timestamp | None = None) -> Extraction | None:
    """The stated extraction date, or the latest event date but never after today (None: no events)."""
    if stated is not None:
        return stated
    if latest_event is None or pd.isna(latest_event):
        return None
    today = (today or pd.Timestamp.today()).normalize()
    return Extraction(min(pd.Timestamp(latest_event).normalize(), today), DERIVED)


def placeholder_mask(values: np.ndarray) -> np.ndarray:
    """Where datetime64 `values` hold a placeholder date."""
    days = values.astype("datetime64[D]")
    return np.isin(days, np.array(PLACEHOLDER_DATES, dtype="datetime64[D]"))
