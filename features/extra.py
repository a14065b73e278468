"""Columns brought from outside the repayment histories (application data, a bureau score): read, checked, joined.

A risk team's file holds `account_id`, optionally `as_of`, and numeric or true/false value columns. Without
`as_of` each account has one row, known throughout (what was recorded at application). With it, each row is
a value known from that day on, and a row (account, T) of the panel or of tonight's book takes the account's
latest row dated on or before T: a value dated after T is never read, as no feature reads the future. An
account without a row (yet) gets missing values, which the trees route like any missing value, and is
counted, never dropped.

The file is held to the contract's rules with its messages (features.contract): the file, the column, how
many rows and which. Everything is vectorised: a million rows read, check and join in about a second.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import Catalog, Feature, NotAReason
from features.contract import (
    Column,
    ContractError,
    Problem,
    TableSchema,
    _is_textual,
    convert_frame,
    missing_columns,
    read_table,
    row_problem,
)
from features.panel import Panel

__all__ = ["EXTRA", "FAMILY", "FOUND", "NOT_IN_FILE", "NOT_YET", "ExtraColumns", "check_accounts", "extra_features",
           "join_panel", "read_extra", "taken_names", "with_extra"]

FAMILY = "extra"
FOUND, NOT_IN_FILE, NOT_YET = 0, 1, 2  # how a row's values were found (ExtraColumns.at)
KEYS = ("account_id", "as_of")
SCHEMA = TableSchema("extra", (Column("account_id", "id"), Column("as_of", "date", required=False)),
                     key="account_id", sort_by=KEYS)
EXTRA = NotAReason("supplied from outside the repayment histories: what it means and how it would read to a "
                   "customer are not declared here, so it is never given as the reason")
ENCODE = ("Extra columns must be numbers or true/false: encode a category as numbers (a 0/1 column per level, "
          "or its default rate), and leave unknown values empty.")


@dataclass(frozen=True, eq=False)
class ExtraColumns:
    """A checked extra-columns file as arrays, rows sorted by account and (when dated) day."""

    names: tuple[str, ...]
    account_id: np.ndarray  # int64, ascending
    day: np.ndarray | None  # int64 days since 1970-01-01, ascending within an account; None: one row per account
    values: np.ndarray  # float64, rows x names (NaN: missing)
    source: str = ""

    @property
    def dated(self) -> bool:
        return self.day is not None

    @property
    def fingerprint(self) -> str:
        """A short SHA-256 of the names, keys and values: two files with the same content share it."""
        h = hashlib.sha256(repr(self.names).encode())
        for array in (self.account_id, self.day, self.values):
            if array is not None:
                h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()[:16]

    def at(self, account_id: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values each (account, day) row knew at the end of its day (rows x names, NaN where none), and
        how they were found: FOUND, NOT_IN_FILE (no row of the account) or NOT_YET (its rows are all later)."""
        account_id, day = np.asarray(account_id, np.int64), np.asarray(day, np.int64)
        if not len(self.account_id):  # a chunk of accounts the file has no row of
            return np.full((len(account_id), len(self.names)), np.nan), np.full(len(account_id), NOT_IN_FILE)
        first = self._starts()
        accounts = self.account_id[first]
        code = np.searchsorted(accounts, account_id)
        known = code < len(accounts)
        known[known] = accounts[code[known]] == account_id[known]
        if self.day is None:
            row = first[np.minimum(code, len(accounts) - 1)]
        else:  # one sorted key of (account, day) for both sides: the latest row on or before each day
            lo = int(self.day.min())
            width = int(self.day.max()) - lo + 2
            own = np.repeat(np.arange(len(accounts)), np.diff(np.append(first, len(self.account_id))))
            keys = own * width + (self.day - lo + 1)
            wanted = np.where(known, code, 0) * width + np.clip(day - lo + 1, 0, width - 1)
            row = np.searchsorted(keys, wanted, side="right") - 1
            known_yet = known & (row >= 0)
            known_yet[known_yet] = own[row[known_yet]] == code[known_yet]
            status = np.where(known_yet, FOUND, np.where(known, NOT_YET, NOT_IN_FILE))
            return _gather(self.values, row, known_yet), status
        return _gather(self.values, row, known), np.where(known, FOUND, NOT_IN_FILE)

    def _starts(self) -> np.ndarray:
        """The first row of each account (rows are sorted by account)."""
        ids = self.account_id
        return np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, np.int64)

    def accounts_outside(self, account_id: np.ndarray) -> tuple[int, int]:
        """How many of the file's accounts are not among `account_id` (the data's, sorted), and how many it has:
        rows of another portfolio, or ids mapped wrongly, are counted rather than silently unused."""
        ours = self.account_id[self._starts()]
        pos = np.minimum(np.searchsorted(account_id, ours), max(len(account_id) - 1, 0))
        inside = (pos < len(account_id)) & (account_id[pos] == ours) if len(account_id) else np.zeros(len(ours), bool)
        return int((~inside).sum()), len(ours)

    def between(self, lo: int, hi: int) -> ExtraColumns:
        """The rows of accounts lo <= account_id < hi: a scoring chunk's share, small to send to a worker."""
        a, b = np.searchsorted(self.account_id, [lo, hi])
        return ExtraColumns(self.names, self.account_id[a:b], None if self.day is None else self.day[a:b],
                            self.values[a:b], self.source)

    def select(self, names: Iterable[str]) -> ExtraColumns:
        """Only the named columns, in that order (a model reads those it was trained with)."""
        names = tuple(names)
        index = [self.names.index(n) for n in names]
        return ExtraColumns(names, self.account_id, self.day, np.ascontiguousarray(self.values[:, index]),
                            self.source)

    def describe(self) -> dict:
        """What a bundle records: the columns a model reads, and the file they came from."""
        return {"columns": list(self.names), "dated": self.dated, "file": Path(self.source).name,
                "fingerprint": self.fingerprint, "rows": len(self.account_id),
                "accounts": len(self._starts())}


def _gather(values: np.ndarray, row: np.ndarray, found: np.ndarray) -> np.ndarray:
    out = np.full((len(row), values.shape[1]), np.nan)
    out[found] = values[row[found]]
    return out


# ------------------------------------------------------------------------------------------- reading


def taken_names(catalog: Catalog, more: Mapping[str, str] | None = None) -> dict[str, str]:
    """Names an extra column may not take, each with what holds it: the catalog's features, the panel's keys
    and its targets' label columns (and `more`, e.g. the latent-state filter's features)."""
    from features.targets import TARGET_NAMES

    taken = {n: "a feature of the catalog" for n in catalog.names}
    taken.update({n: "a target's label column" for n in TARGET_NAMES})
    taken.update({"customer_id": "a key of the data"})
    return {**taken, **dict(more or {})}


def read_extra(path: str | Path, taken: Mapping[str, str]) -> ExtraColumns:
    """Read and check an extra-columns file (CSV, Parquet, or a folder of Parquet parts), or raise a
    ContractError listing every problem: missing or non-integer account_id, an as_of that is not a date,
    repeated keys, text values, names already taken (`taken`: name -> what holds it)."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet") and not path.is_dir():
        raise ContractError([Problem("extra", "", f"file {path} is neither .csv nor .parquet",
                                     hint="Write the extra columns as CSV (with a header row) or Parquet.")])
    frame = read_table(path, "extra")
    keys, problems = _checked(frame, taken)
    if problems:
        raise ContractError([_sourced(p, path) for p in problems])
    names = tuple(str(c) for c in frame.columns if c not in KEYS)
    account, day, order = keys
    values = np.empty((len(frame), len(names)), np.float64)
    for j, name in enumerate(names):
        values[:, j] = _numbers(frame[name])[order]
    return ExtraColumns(names, account, day, values, str(path))


def _sorted_keys(keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Account ids and days (None: no as_of) in (account, day) order, and that order of the file's rows: one
    integer key sorted when it fits in 62 bits (a third of a lexsort's time at a million rows)."""
    account = keys["account_id"].to_numpy(np.int64)
    if "as_of" not in keys:
        order = np.argsort(account, kind="stable")
        return account[order], None, order
    day = keys["as_of"].to_numpy().astype("datetime64[D]").astype(np.int64)
    span = (int(account.max()) - int(account.min()) + 1) * (int(day.max()) - int(day.min()) + 1)
    if span < 1 << 62:
        order = np.argsort((account - account.min()) * (day.max() - day.min() + 1) + (day - day.min()), kind="stable")
    else:
        order = np.lexsort((day, account))
    return account[order], day[order], order


def _schema(frame: pd.DataFrame) -> TableSchema:
    """The keys the file has: account_id, and as_of when the file dates its values."""
    return SCHEMA if "as_of" in frame.columns else TableSchema("extra", SCHEMA.columns[:1], "account_id",
                                                               ("account_id",))


def _checked(frame: pd.DataFrame, taken: Mapping[str, str]) -> tuple[tuple, list[Problem]]:
    """The file's keys sorted (`_sorted_keys`), and every problem of the file, so that one run lists them all."""
    schema = _schema(frame)
    missing = missing_columns(frame, schema)
    if missing is not None:
        return (), [missing]
    names = [c for c in frame.columns if c not in KEYS]
    if not names:
        return (), [Problem("extra", "", f"holds no column besides {' and '.join(schema.sort_by)}",
                               hint="Add the value columns to bring in, e.g. account_id,bureau_score.")]
    if not len(frame):
        return (), [Problem("extra", "", "has no row", hint="Write a row per account (and per as_of day).")]
    keys, problems = convert_frame(frame[list(schema.sort_by)], schema)
    ordered = () if problems else _sorted_keys(keys)
    if ordered:
        problems.append(_repeated(keys, ordered, schema))
    problems += [_value_problem(frame, str(name), taken) for name in names]
    return ordered, [p for p in problems if p is not None]


def _repeated(keys: pd.DataFrame, ordered: tuple, schema: TableSchema) -> Problem | None:
    """Rows whose key repeats, found as neighbours in key order (`ordered`), and named in the file's order."""
    account, day, order = ordered
    same = account[1:] == account[:-1]
    if day is not None:
        same &= day[1:] == day[:-1]
    if not same.any():
        return None
    bad = np.zeros(len(keys), bool)
    bad[order[1:][same]] = bad[order[:-1][same]] = True
    if day is None:
        return row_problem(keys, bad, schema, "account_id", "is duplicated",
                           "Each account_id must appear once in the file: keep one row of each, or add an as_of "
                           "column for values that change over time.")
    return row_problem(keys, bad, schema, "(account_id, as_of)", "is duplicated",
                       "Each account has one value per as_of day: keep one row of each.", key="account_id")


def _value_problem(frame: pd.DataFrame, name: str, taken: Mapping[str, str]) -> Problem | None:
    """What is wrong with one value column: a name already taken, dates, text or infinite values."""
    if name in taken:
        return Problem("extra", name, f"is the name of {taken[name]}",
                       hint=f"Rename the column in the file (e.g. ext_{name}): an extra column adds a feature and "
                       "may not replace one.")
    series = frame[name]
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return Problem("extra", name, "holds dates", len(frame), len(frame),
                       hint="Extra columns must be numbers: give a date as days since it, counted to the row's "
                       "as_of, or leave it out.")
    numbers = _numbers(series)
    bad = np.zeros(len(frame), bool)
    if _is_textual(series):  # a number written as text reads as one; an empty cell is a missing value
        bad = np.isnan(numbers) & (series.fillna("").astype(str).str.strip() != "").to_numpy()
    problem = row_problem(frame, bad, SCHEMA, name, "is text", ENCODE, key="row")
    return problem or row_problem(frame, np.isinf(numbers), SCHEMA, name, "is infinite",
                                  "Leave a value that is not known empty, rather than infinite.", key="row")


def _numbers(series: pd.Series) -> np.ndarray:
    """A value column as float64: numbers as they are, true/false as 1/0, text read as numbers where it is one
    (NaN where not: refused by `_value_problem`)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("Float64").to_numpy(np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(np.float64, na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _sourced(problem: Problem, path: Path) -> Problem:
    from dataclasses import replace

    return problem if problem.source else replace(problem, source=str(path))


# ------------------------------------------------------------------------------------------- declaring


def extra_features(names: Iterable[str], file: str = "") -> list[Feature]:
    """The extra columns as catalog features: no stated risk direction (no monotone constraint: the file's
    meaning is the team's, not declared here), and never a reason (EXTRA says why)."""
    where = f" ({file} at training)" if file else ""
    return [Feature(n, f"supplied with --extra{where}", 0, FAMILY, reason=EXTRA) for n in names]


def with_extra(catalog: Catalog, extra: Mapping | ExtraColumns | None) -> Catalog:
    """The catalog a model with these extra columns reads: its own features, then the extra ones. `extra`: the
    columns, or what a bundle recorded of them (`ExtraColumns.describe`)."""
    if extra is None:
        return catalog
    if isinstance(extra, ExtraColumns):
        return catalog.with_features(*extra_features(extra.names, Path(extra.source).name))
    return catalog.with_features(*extra_features(extra["columns"], extra.get("file", "")))


# ------------------------------------------------------------------------------------------- joining


def days_of(as_of: np.ndarray) -> np.ndarray:
    """datetime64 as-of dates as int64 days since 1970-01-01 (the day numbers `ExtraColumns.at` takes)."""
    return np.asarray(as_of).astype("datetime64[D]").astype(np.int64)


def missing(status: np.ndarray) -> dict[str, int]:
    """Rows left with missing extra values, by why: no row of the account in the file, or none dated yet."""
    return {"not_in_file": int((status == NOT_IN_FILE).sum()), "not_known_yet": int((status == NOT_YET).sum())}


def check_accounts(extra: ExtraColumns, account_id: np.ndarray) -> int:
    """How many of the file's accounts the data (`account_id`, sorted) does not hold; a ContractError when it holds
    none of them, for then the file's ids are not the data's."""
    outside, total = extra.accounts_outside(account_id)
    if outside == total:
        raise ContractError([Problem("extra", "account_id", f"names none of the data's accounts ({total:,} accounts)",
                                     hint="The file's account_id must be the data's accounts.account_id: map the "
                                     "ids before passing the file.", source=extra.source)])
    return outside


def join_panel(panel: Panel, extra: ExtraColumns) -> Panel:
    """The panel with the extra columns after its features, each row's as known at its as-of day; the rows
    left with missing values are counted in the panel's counts (they stay: a missing value is a value)."""
    from dataclasses import replace

    block, status = extra.at(panel.frame["account_id"].to_numpy(), days_of(panel.frame["as_of"].to_numpy()))
    joined = panel.extended(list(extra.names), block)
    file = Path(extra.source).name or "the extra file"
    lacking = missing(status)
    rows = [{"target": f"(extra columns: account not in {file}; values missing, row kept)",
             "usable": lacking["not_in_file"]}]
    if extra.dated:
        rows.append({"target": f"(extra columns: no value of {file} known yet at the as-of day; values missing, "
                     "row kept)", "usable": lacking["not_known_yet"]})
    return replace(joined, counts=pd.concat([joined.counts, pd.DataFrame(rows)], ignore_index=True))
