"""A calendar day as people write it on a command line or in a manifest: YYYY-MM-DD and nothing else.

No other format is guessed: 01/02/2025 is the 1st of February to some and the 2nd of January to others, and
2025-12 is a month, not a day. Standard library only, so a command line checks its dates before it loads
pandas or starts its workers.
"""
from __future__ import annotations

import datetime as dt
import re

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def calendar_day(text: str, what: str) -> dt.date:
    """The day written in `text`, or a ValueError naming `what`."""
    text = str(text).strip()
    if not _ISO_DAY.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a date written YYYY-MM-DD".lstrip())
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a calendar date".lstrip()) from None
