"""The one check of an as-of date against the data: features, training and scoring all call it.

Nothing after the extraction date is known, and nothing before the first date exists; one set of messages
says so, whichever command was given the date.
"""
from __future__ import annotations

import numpy as np


def day_text(day: int) -> str:
    """A day number (days since 1970-01-01) as YYYY-MM-DD."""
    return str(np.datetime64(int(day), "D"))


def check_as_of(days, first_day: int | None, extraction_day: int | None, *, what: str = "as-of date") -> None:
    """Refuse any day after the extraction date or before the first date of the data (ValueError)."""
    days = np.asarray(days, dtype=np.int64)
    if extraction_day is not None:
        late = days[days > extraction_day]
        if len(late):
            raise ValueError(f"{what} {day_text(late[0])} is after the data's extraction date "
                             f"{day_text(extraction_day)}: nothing after the extraction is known; choose an "
                             "earlier date or a newer extract")
    if first_day is not None:
        early = days[days < first_day]
        if len(early):
            raise ValueError(f"{what} {day_text(early[0])} is before any data (first date {day_text(first_day)}): "
                             "choose a later date")
