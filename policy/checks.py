"""What each policy key accepts, declared beside the key.

A field of a policy section carries its checks in its metadata -- `field(metadata=accepts(Number(0, 1)))` --
so the range of a key is written once, where the key is, and every message is worded in one place:
"[limit] max_decrease must be a number in [0, 1], got 1.5". `problems` walks a section and collects them all.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Protocol


class Check(Protocol):
    def problem(self, value: Any, section: Any) -> str | None:
        """What is wrong with `value` (worded to follow the key's name), or None; `section` holds its siblings."""


def accepts(*checks: Check) -> dict:
    """Field metadata: the checks a key's value must pass."""
    return {"checks": checks}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """A number within [lo, hi]."""
    lo: float = -math.inf
    hi: float = math.inf

    def problem(self, value, section):
        if _is_number(value) and self.lo <= value <= self.hi:
            return None
        return f"must be a number in [{self.lo}, {self.hi}], got {value!r}"


@dataclass(frozen=True)
class Whole:
    """A whole number of at least lo (a count: months, days)."""
    lo: int

    def problem(self, value, section):
        if isinstance(value, int) and not isinstance(value, bool) and value >= self.lo:
            return None
        return f"must be a whole number >= {self.lo}, got {value!r}"


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def problem(self, value, section):
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


@dataclass(frozen=True)
class Text:
    """Text; `named` also refuses the empty text (an action or treatment needs a name)."""
    named: bool = False

    def problem(self, value, section):
        if isinstance(value, str) and (value or not self.named):
            return None
        return f"must be {'a non-empty name' if self.named else 'text'}, got {value!r}"


@dataclass(frozen=True)
class Names:
    """A list of distinct non-empty names that includes `required`."""
    required: tuple[str, ...] = ()

    def problem(self, value, section):
        if not (isinstance(value, tuple) and all(isinstance(t, str) and t for t in value)
                and len(set(value)) == len(value)):
            return f"must be a list of distinct non-empty names, got {value!r}"
        missing = [r for r in self.required if r not in value]
        return f"must include {', '.join(missing)}" if missing else None


@dataclass(frozen=True)
class OneOf:
    """One of the names listed in the sibling key `key`."""
    key: str

    def problem(self, value, section):
        names = getattr(section, self.key)
        return None if value in names else f"{value!r} is not one of the {self.key} {list(names)}"


@dataclass(frozen=True)
class AtLeast:
    """No smaller than the sibling key `key`."""
    key: str

    def problem(self, value, section):
        other = getattr(section, self.key)
        if not (_is_number(value) and _is_number(other)) or value >= other:
            return None  # a value that is not a number is reported by its own Number check
        return f"({value}) must be at least {self.key} ({other})"


@dataclass(frozen=True)
class Rows:
    """A non-empty list of tables of one kind, ordered by `key` without repeats, the lowest at most `lowest`.

    The rows' own keys are checked by the kind's field declarations; the order and the lowest row make sure
    every account falls in exactly one row (a score band, a days-past-due bucket).
    """
    kind: type
    key: str
    lowest: float
    descending: bool = False

    @property
    def noun(self) -> str:
        return self.kind.__name__.lower()

    def problem(self, value, section):
        if not value:
            return f"must list at least one {self.noun}"
        keys = [getattr(row, self.key) for row in value]
        if keys != sorted(keys, reverse=self.descending) or len(set(keys)) < len(keys):
            return (f"must be listed {'highest' if self.descending else 'lowest'} {self.key} first, "
                    f"without repeats (got {keys})")
        if min(keys) > self.lowest:
            end = "last" if self.descending else "first"
            return (f"are incomplete: the {end} {self.noun} must have {self.key} = {self.lowest} so that every "
                    "account falls in one")
        return None


def rows_of(f) -> Rows | None:
    """The Rows check of a field, if its value is a list of tables."""
    return next((c for c in f.metadata.get("checks", ()) if isinstance(c, Rows)), None)


def problems(section: Any, where: str, siblings: Any = None) -> list[str]:
    """Every key of `section` that breaks a declared check, in words that start with `where` ("[limit]").

    Rows are checked one by one before their list (the order of values that are not numbers means nothing);
    a row's checks that name a sibling key look it up in `siblings`, the section that holds the list.
    """
    out: list[str] = []
    for f in fields(section):
        value = getattr(section, f.name)
        rows = rows_of(f)
        if rows is not None and isinstance(value, tuple):
            inner = [p for i, row in enumerate(value) if isinstance(row, rows.kind)
                     for p in problems(row, f"{where} {f.name}, row {i + 1}:", section)]
            out += inner
            if inner:
                continue
        for check in f.metadata.get("checks", ()):
            problem = check.problem(value, section if siblings is None else siblings)
            if problem:
                out.append(f"{where} {f.name} {problem}")
                break
    return out
