"""The pack's page: sections in order, the summary of every test first, findings linked to their sections.

A section module returns a `Section`: its blocks (text, tables, figures) in reading order, its numbers for the
JSON, and its `Check`s (a test against a declared threshold: passed, failed, or not judged with a reason). A
failed check marked `finding` becomes a finding of the summary, linked to its section. The JSON holds the same
numbers as the page: the summary, every check and every section's numbers.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from validation.report import Report


@dataclass(frozen=True)
class Check:
    """One test of the pack against its threshold; passed None: shown but not judged (`note` says why)."""

    test: str
    value: float | str | None
    threshold: str
    passed: bool | None
    finding: bool = False  # a failure is a finding of the summary
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Callable[[Report], Any]] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def text(self, markdown: str) -> Section:
        self.blocks.append(lambda rep: rep.add_text(markdown))
        return self

    def table(self, title: str | None, frame: pd.DataFrame, fmt=None) -> Section:
        self.blocks.append(lambda rep: rep.add_table(title, frame, fmt))
        return self

    def figure(self, title: str, fig) -> Section:
        self.blocks.append(lambda rep: rep.add_figure(title, fig))
        return self

    def check(self, *args, **kwargs) -> Section:
        self.checks.append(Check(*args, **kwargs))
        return self

    def missing(self, what: str) -> Section:
        """A part of the section the data cannot show: one line, never an error."""
        return self.text(f"*Not shown: {what}.*")


@dataclass
class Pack:
    title: str
    header: dict  # model, version, run id, seed, window ...: the summary's first table
    sections: list[Section]
    evidence: Any = None  # what the sections were built from (review.evidence.Evidence), for notebooks and tests

    @property
    def checks(self) -> list[tuple[Section, Check]]:
        return [(s, c) for s in self.sections for c in s.checks]

    @property
    def findings(self) -> list[tuple[Section, Check]]:
        return [(s, c) for s, c in self.checks if c.finding and c.passed is False]

    def summary_table(self) -> pd.DataFrame:
        rows = [{"section": s.title, "test": c.test, "value": show(c.value), "threshold": c.threshold,
                 "result": _verdict(c.passed), "note": c.note} for s, c in self.checks]
        return pd.DataFrame(rows, columns=["section", "test", "value", "threshold", "result", "note"])

    def report(self) -> Report:
        rep = Report(self.title, dated=True)
        rep.add_section("Summary", anchor="summary")
        rep.add_table(None, pd.DataFrame({"": list(self.header), "value": [str(v) for v in self.header.values()]}))
        found = self.findings
        if found:
            items = "".join(f'<li><a href="#{s.key}">{_escape(s.title)}</a>: {_escape(c.test)} '
                            f'({_escape(show(c.value))}; threshold {_escape(c.threshold)}){_note(c)}</li>'
                            for s, c in found)
            rep.add_text(f"<h3>Findings ({len(found)})</h3><ul>{items}</ul>")
        else:
            rep.add_text("<h3>Findings</h3><p>None: no test with a finding attached failed.</p>")
        counts = pd.Series([_verdict(c.passed) for _, c in self.checks]).value_counts()
        rep.add_text("<p>" + ", ".join(f"{k} {v}" for k, v in counts.items()) + " tests.</p>")
        rep.add_table("Every test against its threshold", self.summary_table())
        for s in self.sections:
            rep.add_section(s.title, anchor=s.key)
            for block in s.blocks:
                block(rep)
        return rep

    def numbers(self) -> dict:
        return {"title": self.title, "header": _plain(self.header),
                "findings": [{"section": s.key, "test": c.test, "value": _plain(c.value)} for s, c in self.findings],
                "checks": [{"section": s.key, "test": c.test, "value": _plain(c.value), "threshold": c.threshold,
                            "passed": c.passed, "finding": c.finding, "note": c.note} for s, c in self.checks],
                "sections": {s.key: _plain(s.numbers) for s in self.sections}}

    def write(self, html: Path) -> tuple[Path, Path]:
        """The page and its JSON beside it (`report.json` for `report.html`), each written atomically."""
        html = Path(html)
        js = html.with_suffix(".json")
        page = self.report().render().encode("utf-8")  # both rendered before either is written
        numbers = (json.dumps(self.numbers(), indent=1, sort_keys=True, allow_nan=False) + "\n").encode()
        _atomic(js, numbers)
        _atomic(html, page)
        return html, js


def floats(frame: pd.DataFrame, spec: str) -> dict:
    """One format for every float column of `frame` (the others keep theirs)."""
    return {c: spec for c in frame.columns if frame[c].dtype.kind == "f"}


def _verdict(passed: bool | None) -> str:
    return "not judged" if passed is None else ("pass" if passed else "FAIL")


def show(value) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _note(c: Check) -> str:
    return f" — {_escape(c.note)}" if c.note else ""


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


def _plain(obj):
    """JSON-ready: numpy scalars to Python, NaN to None, frames to lists of records, dates to ISO days."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [_plain(r) for r in obj.reset_index(drop=obj.index.name is None).to_dict("records")]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, pd.Timestamp | np.datetime64 | datetime.date):
        return str(pd.Timestamp(obj).date())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        return None if not math.isfinite(obj) else float(obj)
    return obj


def _atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
