"""The scoring job's one error type, shared by its modules."""
from __future__ import annotations

from features.as_of import day_text

__all__ = ["ScoreError", "day_text"]


class ScoreError(ValueError):
    """A scoring run that cannot go ahead; the message says what is wrong and what to do."""

