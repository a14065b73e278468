"""Problems found group by group, added up to what the whole extract breaks.

A job that checks its data in pieces (the local engine's chunks, Spark's customer buckets) sees each piece's
rows only. A message must count over the whole table ("3 of 18,206,731 rows", not "3 of 263,210"), and every
piece's findings count, not only the first failing one's: so the pieces' problems are added up, problem by
problem, and worded as `python -m features validate` words them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from features.contract import SAMPLE, Problem, duplicate_hint, find_table
from features.extract_manifest import control_totals


class ProblemTally:
    """The chunks' problems, merged: counts added, the first samples kept, totals of the whole table."""

    def __init__(self) -> None:
        self._found: dict[tuple, Problem] = {}

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, problems: tuple[Problem, ...]) -> None:
        for p in problems:
            key = (p.table, p.column, p.what, p.key, p.hint)
            seen = self._found.get(key)
            if seen is None:
                self._found[key] = p
            else:
                samples = tuple(dict.fromkeys((*seen.samples, *p.samples)))[:SAMPLE]
                self._found[key] = dataclasses.replace(seen, count=seen.count + p.count, samples=samples)

    def replace(self, problem: Problem) -> None:
        """A problem counted over the whole table, in place of the chunks' partial counts of it."""
        self._found = {k: p for k, p in self._found.items() if (p.table, p.column, p.what) !=
                       (problem.table, problem.column, problem.what)}
        self._found[(problem.table, problem.column, problem.what, problem.key, problem.hint)] = problem

    def whole(self, data_dir: Path) -> list[Problem]:
        """The merged problems, each with its table's row count as the total and the table's file as source."""
        rows: dict[str, int] = {}
        out = []
        for p in self._found.values():
            if p.total:
                path = find_table(Path(data_dir), p.table)
                if p.table not in rows:  # row counts from the footers (a CSV is counted)
                    rows[p.table] = control_totals(data_dir, [p.table], sums=False)[p.table]["rows"]
                p = dataclasses.replace(p, total=rows[p.table], source=p.source or str(path))
            out.append(p)
        return out


def repeated_bill_ids_problem(samples, rows: int, total: int, source: str) -> Problem:
    """The one wording of bill ids held by more than one row of the whole bills table: `rows` such rows of
    `total`, the first repeated ids (in order) as samples. Pieces see only their own repeats, so this is
    counted over the whole column, however the job reads it."""
    return Problem("bills", "bill_id", "is duplicated", int(rows), int(total), "bill_id",
                   tuple(str(v) for v in list(samples)[:SAMPLE]), duplicate_hint("bill_id", "bills"), source)
