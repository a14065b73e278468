"""Problems found chunk by chunk, added up to what the whole extract breaks.

Each chunk checks its own rows against the contract. A message must count over the whole table ("3 of
18,206,731 rows", not "3 of 263,210"), and every chunk's findings count, not only the first failing one's:
so the job adds them up, problem by problem, and words the total as `python -m features validate` would.
A bill_id repeated in two chunks is seen by neither; when chunks' bill-id ranges overlap, the whole
column is read once to count repeats (chunks of an extract sorted by account rarely overlap).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from features.contract import SAMPLE, Problem, duplicate_hint, find_table
from features.extract_manifest import control_totals
from scoring.chunks import table_columns


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


def repeated_bill_ids(data_dir: Path) -> Problem | None:
    """bill_id values that occur more than once in the whole bills table (every such row counted)."""
    path = find_table(Path(data_dir), "bills")
    column = table_columns(path, ("bill_id",)).column("bill_id")
    ids = column.drop_null().to_numpy().astype(np.int64, copy=False)
    values, counts = np.unique(ids, return_counts=True)
    repeated = values[counts > 1]
    if not len(repeated):
        return None
    return Problem("bills", "bill_id", "is duplicated", int(counts[counts > 1].sum()), len(column), "bill_id",
                   tuple(str(v) for v in repeated[:SAMPLE]),
                   duplicate_hint("bill_id", "bills"), str(path))
