"""The input data contract: load repayment histories, check them, hand them on in one fixed shape.

Every later step (features, labels, models) trusts what comes out of here: dates are calendar days as
``datetime64[s]``, ids are ``int64``, amounts ``float64``, optional columns exist, and tables are sorted
the way DESIGN.md says. Anything that breaks that promise is refused here, with a message that names
the table, the column, a sample of offending rows and what to do — never a pandas traceback.

All checks are vectorised (no per-row Python), so the same code runs on tens of millions of rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from features import kernels, sorted_keys
from features.arrow_memory import use_jemalloc
from features.days import any_off_midnight, days_to_ticks, off_midnight, ticks_per_day
from features.extraction import EVENT_COLUMNS, LONGEST_TERM_MONTHS, Extraction, placeholder_mask, resolve
from features.parquet_columns import integer_values, read_columns

use_jemalloc()  # every table of the data passes through here

__all__ = [
    "CORE_TABLES",
    "SCHEMAS",
    "ContractError",
    "Problem",
    "TableSchema",
    "Tables",
    "bill_rows",
    "load_tables",
    "validate",
]

SAMPLE = 3  # offending keys shown per problem
PRODUCTS = ("revolving", "installment")
DATE_PRECISIONS = ("day", "month")
CORE_TABLES = ("accounts", "bills", "payments", "limits")
ALL_TABLES = (*CORE_TABLES, "macro", "truth")
NULL_HINT = "Every row needs a value here: fill it in the extract, or drop these rows."
PREPAYMENT_DAYS = 31  # a payment may precede its bill's statement by at most this (an early payment)


# --------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Column:
    """One column of the contract: its kind decides the dtype it is converted to."""

    name: str
    kind: str  # 'id' | 'int' | 'date' | 'amount' | 'float' | 'str' | 'bool'
    required: bool = True
    nullable: bool = False
    default: object = None  # fill value for absent column / null values (only for defaulted columns)


@dataclass(frozen=True)
class TableSchema:
    """Columns, the key used to show offending rows, the sort order, and the kind of extra columns."""

    name: str
    columns: tuple[Column, ...]
    key: str
    sort_by: tuple[str, ...]
    extra_kind: str | None = None  # None: extra columns pass through untouched

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def date_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == "date")


SCHEMAS: Mapping[str, TableSchema] = {
    "accounts": TableSchema(
        "accounts",
        (
            Column("account_id", "id"),
            Column("customer_id", "id"),
            Column("product", "str"),
            Column("open_date", "date"),
            Column("grace_days", "int"),
            Column("charge_off_date", "date", required=False, nullable=True),
            Column("close_date", "date", required=False, nullable=True),
            Column("income_band", "int", required=False, nullable=True),
            Column("loan_term", "int", required=False, nullable=True),
            Column("date_precision", "str", required=False, default="day"),
        ),
        key="account_id",
        sort_by=("account_id",),
    ),
    "bills": TableSchema(
        "bills",
        (
            Column("account_id", "id"),
            Column("bill_id", "id"),
            Column("statement_date", "date"),
            Column("due_date", "date"),
            Column("amount_due", "amount"),
            Column("min_due", "amount"),
            Column("parent_bill_id", "id", required=False, nullable=True),
            Column("converted_date", "date", required=False, nullable=True),
        ),
        key="bill_id",
        sort_by=("account_id", "due_date", "statement_date", "bill_id"),
    ),
    "payments": TableSchema(
        "payments",
        (
            Column("account_id", "id"),
            Column("bill_id", "id"),
            Column("payment_date", "date"),
            Column("amount", "amount"),
            Column("imputed", "bool", required=False, default=False),
        ),
        key="bill_id",
        sort_by=("account_id", "payment_date", "bill_id"),
    ),
    "limits": TableSchema(
        "limits",
        (
            Column("account_id", "id"),
            Column("effective_date", "date"),
            Column("credit_limit", "amount"),
        ),
        key="account_id",
        sort_by=("account_id", "effective_date"),
    ),
    "macro": TableSchema(
        "macro",
        (Column("month", "date"), Column("published_date", "date")),
        key="month",
        sort_by=("month",),
        extra_kind="float",
    ),
    "truth": TableSchema(
        "truth",
        (Column("account_id", "id"), Column("as_of", "date")),
        key="account_id",
        sort_by=("account_id", "as_of"),
        extra_kind="float",
    ),
}


# --------------------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One broken promise of the contract, with enough detail for a user to find the rows."""

    table: str
    column: str
    what: str  # e.g. "is before bills.statement_date"
    count: int = 0
    total: int = 0
    key: str = ""
    samples: tuple[str, ...] = ()
    hint: str = ""
    source: str = ""

    @property
    def message(self) -> str:
        subject = f"{self.table}.{self.column}" if self.column else self.table
        line = f"{subject} {self.what}"
        if self.total or self.count:
            line += f" in {self.count:,} of {self.total:,} rows"
        if self.samples:
            line += f" ({self.key} {', '.join(self.samples)})"
        if self.source:
            line += f" in {self.source}"
        return f"{line}\n  {self.hint}" if self.hint else line


class ContractError(ValueError):
    """The input breaks the data contract; the message says where and what to do."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        first, rest = self.problems[0], self.problems[1:]
        text = first.message
        if rest:
            text += f"\n{len(rest)} more problem(s):\n" + "\n".join(p.message for p in rest)
        super().__init__(text)


def _fmt(value: object) -> str:
    """Show a key the way a user typed it: 1204 not 1204.0, dates without a time."""
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    if isinstance(value, np.datetime64):
        return _fmt(pd.Timestamp(value))
    return str(value)


def row_problem(
    frame: pd.DataFrame,
    bad: np.ndarray | pd.Series,
    schema: TableSchema,
    column: str,
    what: str,
    hint: str,
    *,
    key: str | None = None,
) -> Problem | None:
    """A Problem for the rows flagged in ``bad`` (None when none are), sampling their keys."""
    mask = np.asarray(bad, dtype=bool)
    if not mask.any():  # the usual answer, and cheaper than counting
        return None
    count = int(mask.sum())
    key = key or schema.key
    positions = np.flatnonzero(mask)[: SAMPLE * 4]
    samples: list[str] = []
    if key in frame.columns and not pd.isna(frame[key].iloc[positions]).any():
        for value in frame[key].iloc[positions]:
            text = _fmt(value)
            if text not in samples:
                samples.append(text)
    else:
        key, samples = "row", [str(p + 1) for p in positions]
    return Problem(schema.name, column, what, count, len(frame), key, tuple(samples[:SAMPLE]), hint)


# ------------------------------------------------------------------------------------------ conversion

_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n", ""})
_WORDS = {
    "id": "is not an integer id",
    "int": "is not an integer",
    "date": "is not a calendar date (YYYY-MM-DD, no time of day)",
    "amount": "is not a number",
    "float": "is not a number",
    "bool": "is not true/false",
}


def _is_textual(series: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)


def _to_date(series: pd.Series) -> pd.Series:
    """Calendar dates as datetime64[s]; rows that are not a date at midnight become NaT."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_localize(None)
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "M":
        return _midnight_only(series)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = series
    elif _is_textual(series):
        parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
    elif series.isna().all():
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[s]")
    else:  # numbers or booleans are not dates
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[s]")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    parsed = parsed.where(parsed == parsed.dt.normalize())
    return parsed.astype("datetime64[s]")


def _midnight_only(series: pd.Series) -> pd.Series:
    """datetime64 values kept where they fall on midnight (NaT elsewhere), as datetime64[s]: integer arithmetic
    on the stored ticks, no calendar objects."""
    per_day = ticks_per_day(series.dtype)
    if per_day <= 1:  # a calendar unit (D, M, Y...) is midnight by construction
        return series.astype("datetime64[s]")
    ticks = series.to_numpy().view("int64")
    if not any_off_midnight(ticks, per_day):
        return series if per_day == 86_400 else series.astype("datetime64[s]")  # as read: nothing changed
    return series.where(~off_midnight(ticks, per_day)).astype("datetime64[s]")


def _to_number(series: pd.Series) -> pd.Series:
    """Numbers as float64 (NaN where not a number)."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return pd.Series(np.nan, index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    if series.isna().all():
        return pd.Series(np.nan, index=series.index)
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _to_integer(series: pd.Series) -> pd.Series:
    """Integers as nullable Int64 (NA where not an integer); int64 ids keep full precision."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "i":
        return series.astype("int64")  # no nulls possible: skip the masked Int64 round trip
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("Int64")
    numbers = _to_number(series)
    integral = np.isfinite(numbers) & (numbers == np.floor(numbers))
    return numbers.where(integral).astype("Int64")


def _to_bool(series: pd.Series) -> pd.Series:
    """Booleans as nullable boolean; accepts true/false words and 0/1."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "b":
        return series  # numpy bool holds no nulls
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("boolean")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.where(series.isin([0, 1])).astype("float64").astype("boolean")
    words = series.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[words.isin(_TRUE).to_numpy()] = True
    out[words.isin(_FALSE).to_numpy()] = False
    return out.where(series.notna(), pd.NA)


def _to_str(series: pd.Series) -> pd.Series:
    return series.astype("str")


_CONVERTERS: Mapping[str, Callable[[pd.Series], pd.Series]] = {
    "id": _to_integer,
    "int": _to_integer,
    "date": _to_date,
    "amount": _to_number,
    "float": _to_number,
    "str": _to_str,
    "bool": _to_bool,
}


def _final_dtype(column: Column, converted: pd.Series) -> pd.Series:
    """The dtype downstream code sees: plain numpy dtypes wherever nulls cannot occur."""
    if column.kind in ("id", "int"):
        return converted.astype("Int64") if column.nullable else converted.astype("int64")
    if column.kind == "bool":
        return converted.astype("bool")
    return converted


def _absent(column: Column, rows: int) -> pd.Series:
    """The value an absent optional column gets, so the schema is the same with or without it."""
    if column.default is not None and column.kind == "str":  # built by Arrow: from Python strings, 0.2 s a million
        return pd.Series(pd.array(pa.repeat(pa.scalar(column.default, pa.large_string()), rows), dtype="str"))
    if column.default is not None:
        return pd.Series(np.full(rows, column.default), dtype="bool")
    if column.kind in ("id", "int"):
        return pd.Series(pd.arrays.IntegerArray(np.zeros(rows, "int64"), np.ones(rows, bool)))
    if column.kind == "date":
        return pd.Series(np.full(rows, np.datetime64("NaT", "s")))
    return pd.Series(np.full(rows, np.nan), dtype="str" if column.kind == "str" else "float64")


def convert_frame(frame: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, list[Problem]]:
    """Convert every contract column to its dtype; report values that cannot be, and null keys/values."""
    out: dict[str, pd.Series] = {}
    problems: list[Problem] = []
    rows = len(frame)
    extras = [c for c in frame.columns if c not in {col.name for col in schema.columns}]
    columns = list(schema.columns)
    if schema.extra_kind:
        columns += [Column(str(c), schema.extra_kind, required=False, nullable=True) for c in extras]
    for column in columns:
        if column.name not in frame.columns:
            out[column.name] = _absent(column, rows)
            continue
        raw = frame[column.name].reset_index(drop=True)
        converted = _CONVERTERS[column.kind](raw)
        raw_na = raw.isna().to_numpy()
        if column.default is not None and raw_na.any():
            converted = converted.where(~raw_na, column.default)
        # a numeric column that kept its dtype cannot have gained nulls, nor one returned as it was: skip
        # comparing 20 M flags
        kept = converted is raw or (converted.dtype == raw.dtype and column.kind in ("id", "int", "amount", "float",
                                                                                    "bool"))
        problem = None if kept else row_problem(
            frame, ~raw_na & converted.isna().to_numpy(), schema, column.name,
            _WORDS.get(column.kind, "cannot be read"),
            "Fix these values in the extract; the column must hold "
            f"{'dates as YYYY-MM-DD' if column.kind == 'date' else column.kind + ' values'}.",
        )
        if problem is None and not column.nullable:
            problem = row_problem(
                frame, raw_na, schema, column.name, "is null", NULL_HINT,
            )
        if problem:
            problems.append(problem)
            continue
        if column.kind == "date" and column.nullable:  # "none" written as a far-future placeholder
            converted = converted.where(~placeholder_mask(converted.to_numpy()))
        out[column.name] = _final_dtype(column, converted)
    if not schema.extra_kind:
        for name in extras:
            out[name] = frame[name].reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(rows), copy=False), problems


# ------------------------------------------------------------------------------------------ the checks


def missing_columns(frame: pd.DataFrame, schema: TableSchema) -> Problem | None:
    missing = [c.name for c in schema.columns if c.required and c.name not in frame.columns]
    if not missing:
        return None
    present = ", ".join(map(str, frame.columns)) or "none"
    return Problem(
        schema.name,
        ", ".join(missing) if len(missing) == 1 else "{" + ", ".join(missing) + "}",
        f"{'is' if len(missing) == 1 else 'are'} missing (columns present: {present})",
        hint=f"Add the missing column(s) to {schema.name}; the contract needs "
        + ", ".join(c.name for c in schema.columns if c.required) + ".",
    )


def _duplicated(frame: pd.DataFrame, subset: list[str]) -> np.ndarray:
    """Rows whose `subset` values occur more than once (all of them, like keep=False).

    Key columns are usually already in order (ids ascending), and then duplicates are neighbours: one
    comparison pass instead of hashing tens of millions of keys.
    """
    columns = [frame[c].to_numpy() for c in subset]
    plain = all(v.dtype.kind in "iuM" and not (v.dtype.kind == "M" and np.isnat(v).any()) for v in columns)
    if len(frame) < 2 or not plain or not is_sorted(frame, subset):
        return frame.duplicated(subset=subset, keep=False).to_numpy()
    same = np.ones(len(frame) - 1, dtype=bool)
    for values in columns:
        as_int = _int64_keys(values)
        if as_int is None:
            same &= values[1:] == values[:-1]
        else:
            sorted_keys.neighbours_equal(as_int, same)
    bad = np.zeros(len(frame), dtype=bool)
    bad[1:] |= same
    bad[:-1] |= same
    return bad


def _duplicates(frame: pd.DataFrame, schema: TableSchema, subset: list[str]) -> Problem | None:
    bad = _duplicated(frame, subset)
    label = subset[0] if len(subset) == 1 else "(" + ", ".join(subset) + ")"
    return row_problem(frame, bad, schema, label, "is duplicated", duplicate_hint(label, schema.name), key=subset[0])


def duplicate_hint(label: str, table: str) -> str:
    return f"Each {label} must appear once in {table}: remove the repeated rows from the extract."


def _table_checks(frame: pd.DataFrame, schema: TableSchema) -> list[Problem | None]:
    """Checks within one table, on converted columns."""
    name = schema.name
    f = frame
    if name == "accounts":
        return [
            _duplicates(f, schema, ["account_id"]),
            row_problem(f, ~f["product"].isin(PRODUCTS), schema, "product",
                        "is not one of " + " | ".join(PRODUCTS),
                        "Map the product codes of the extract to 'revolving' or 'installment'."),
            row_problem(f, f["grace_days"] < 0, schema, "grace_days", "is negative",
                        "grace_days counts days after the due date without penalty: use 0 for none."),
            row_problem(f, (f["loan_term"] <= 0).fillna(False), schema, "loan_term", "is zero or negative",
                        "loan_term counts a cash loan's installments: leave it empty when unknown."),
            row_problem(f, ~f["date_precision"].isin(DATE_PRECISIONS), schema, "date_precision",
                        "is not one of " + " | ".join(DATE_PRECISIONS),
                        "Use 'day' for day-exact dates, 'month' for monthly (bureau-style) sources."),
        ]
    if name == "bills":
        return [
            _duplicates(f, schema, ["bill_id"]),
            row_problem(f, _column(f, "due_date") < _column(f, "statement_date"), schema, "due_date",
                        "is before bills.statement_date",
                        "A bill falls due after its statement is issued: "
                        "fix the extract, or drop these bills."),
            *_amount_checks(f, schema, ("amount_due", "min_due")),
            row_problem(f, _exceeds(_column(f, "min_due"), _column(f, "amount_due"), 1e-9), schema, "min_due",
                        "is greater than bills.amount_due",
                        "The minimum due cannot exceed the amount due: fix the extract "
                        "(for installments min_due equals amount_due)."),
            row_problem(f, _column(f, "converted_date") < _column(f, "statement_date"), schema, "converted_date",
                        "is before bills.statement_date",
                        "A statement can only be converted into installments after it is issued."),
        ]
    if name == "payments":
        return _amount_checks(f, schema, ("amount",))
    if name == "limits":
        return [_duplicates(f, schema, ["account_id", "effective_date"]),
                *_amount_checks(f, schema, ("credit_limit",))]
    if name == "macro":
        return [
            _duplicates(f, schema, ["month"]),
            row_problem(f, f["month"].dt.day != 1, schema, "month", "is not the first day of a month",
                        "macro has one row per month, dated on the 1st: fix the month column."),
        ]
    return []


def _exceeds(a: np.ndarray, b: np.ndarray, tolerance: float, block: int = 1 << 20) -> np.ndarray:
    """a > b + tolerance, a block at a time: `b + tolerance` whole would be a float copy of 20 M bills."""
    out = np.empty(len(a), dtype=bool)
    for lo in range(0, len(a), block):
        np.greater(a[lo:lo + block], b[lo:lo + block] + tolerance, out=out[lo:lo + block])
    return out


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A plain column's numpy values: compared in numpy, dates without pandas' NaT masks (NaT compares False)."""
    return frame[name].to_numpy()


def _amount_checks(frame: pd.DataFrame, schema: TableSchema, columns: Iterable[str]) -> list[Problem | None]:
    out = []
    for column in columns:
        values = frame[column].to_numpy(dtype="float64")
        out.append(row_problem(
            frame, ~np.isfinite(values) | (values < 0), schema, column, "is negative or not finite",
            "Amounts are non-negative numbers: fix the extract (refunds are not payments)."))
    return out


def _unknown(
    frame: pd.DataFrame, schema: TableSchema, column: str, known: pd.Series, target: str, hint: str
) -> Problem | None:
    values = frame[column]
    keys, ids = _int64_keys(values.to_numpy()), _int64_keys(known.to_numpy())
    if keys is not None and ids is not None and sorted_keys.nondecreasing(keys) and sorted_keys.nondecreasing(ids):
        bad = ~sorted_keys.in_sorted(keys, ids)  # the usual case: both sorted by account, one merge pass
    else:
        bad = values.notna().to_numpy() & ~values.isin(known).to_numpy()
    return row_problem(frame, bad, schema, column, f"is not in {target}", hint, key=column)


def _int64_keys(values: np.ndarray) -> np.ndarray | None:
    """Integer or datetime keys as int64 (a view where possible); None for anything else."""
    if values.dtype.kind not in "iM":
        return None
    return values.view(np.int64) if values.dtype.itemsize == 8 else values.astype(np.int64)


def _positions(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted value among unique `keys`, -1 where it is absent.

    A sorted search: keys are sorted first only if they are not already (bill ids usually ascend with the
    accounts); wanted values only if they are far from sorted, because searches in random order miss the
    cache on every step (20 M random lookups take 20 s, the same lookups in order 1 s).
    """
    if not len(keys):
        return np.full(len(wanted), -1, dtype=np.int64)
    order = None if sorted_keys.nondecreasing(keys) else np.argsort(keys, kind="stable")
    ordered = keys if order is None else keys[order]
    mostly_sorted = sorted_keys.descents(wanted) * 8 <= len(wanted)  # then searches in turn stay in cache
    w_order = None if mostly_sorted else np.argsort(wanted, kind="stable")
    needles = wanted if w_order is None else wanted[w_order]
    found = np.searchsorted(ordered, needles)
    np.minimum(found, len(ordered) - 1, out=found)
    missing = ordered[found] != needles
    rows = found if order is None else order[found]
    rows[missing] = -1
    if w_order is None:
        return rows
    out = np.empty_like(rows)
    out[w_order] = rows
    return out


def bill_rows(bill_ids: np.ndarray, bill_account: np.ndarray, wanted: np.ndarray,
              wanted_account: np.ndarray) -> np.ndarray:
    """Row of each wanted bill id among the bills, -1 where it is absent. When both tables are sorted by
    account (as extracts are), each id is looked up among its own account's few bills in one pass; the
    ids not found there (a bill of another account, or none) by a search of all bills."""
    if not (len(bill_ids) and sorted_keys.nondecreasing(bill_account) and sorted_keys.nondecreasing(wanted_account)):
        return _positions(bill_ids, wanted)
    starts = np.flatnonzero(np.r_[True, bill_account[1:] != bill_account[:-1]])
    bill_start = np.r_[starts, len(bill_ids)].astype(np.int64)
    want_start = kernels.run_starts(wanted_account, bill_account[starts])
    rows = kernels.rows_in_account(bill_ids, bill_start, wanted, want_start)
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        rows[missing] = _positions(bill_ids, wanted[missing])
    return rows


def _cross_checks(tables: Mapping[str, pd.DataFrame]) -> tuple[list[Problem | None], np.ndarray | None]:
    """References between tables: every bill, payment and limit belongs to a known account/bill. Also
    returns the row in bills of each payment's bill (-1 where there is none), for the builder to reuse."""
    out: list[Problem | None] = []
    pos = None
    accounts, bills, payments = tables.get("accounts"), tables.get("bills"), tables.get("payments")
    if accounts is not None:
        for name in ("bills", "limits", "payments"):
            if tables.get(name) is not None:
                out.append(_unknown(
                    tables[name], SCHEMAS[name], "account_id", accounts["account_id"], "accounts.account_id",
                    unknown_account_hint(name)))
    if bills is None:
        return out, pos
    bill_ids = bills["bill_id"].to_numpy("int64")
    bill_account = bills["account_id"].to_numpy("int64")
    child = np.flatnonzero(bills["parent_bill_id"].notna().to_numpy())  # installment plans: a few rows
    parent = _positions(bill_ids, bills["parent_bill_id"].iloc[child].to_numpy("int64"))
    linked = parent >= 0
    orphan = _rows_mask(len(bills), child[~linked])
    foreign = _rows_mask(len(bills), child[linked][bill_account[parent[linked]] != bill_account[child[linked]]])
    out.append(row_problem(bills, orphan, SCHEMAS["bills"], "parent_bill_id", "is not in bills.bill_id",
                           "parent_bill_id names the statement an installment plan came from: it must be a "
                           "bill of the same extract."))
    out.append(row_problem(bills, foreign, SCHEMAS["bills"], "parent_bill_id", "is a bill of another account",
                           "An installment plan comes from a statement of the same account: "
                           "fix the extract."))
    if payments is not None:
        pay_account = payments["account_id"].to_numpy("int64")
        pos = bill_rows(bill_ids, bill_account, payments["bill_id"].to_numpy("int64"), pay_account)
        schema = SCHEMAS["payments"]
        out.append(row_problem(payments, pos < 0, schema, "bill_id", "is not in bills.bill_id",
                               "Every payment repays a bill: add the bill or drop these payments."))
        wrong = sorted_keys.differs_at(bill_account, pos, pay_account)
        out.append(row_problem(payments, wrong, schema, "account_id", "differs from the bill's account_id",
                               "A payment belongs to the account of the bill it repays: fix the extract."))
        out.append(_early_payments(payments, bills, pos))
    return out, pos


def _early_payments(payments: pd.DataFrame, bills: pd.DataFrame, pos: np.ndarray) -> Problem | None:
    """Payments dated long before their bill was issued: a mistyped date or the wrong bill."""
    statement = _column(bills, "statement_date")[np.maximum(pos, 0)]
    early = (pos >= 0) & (_column(payments, "payment_date") < statement - np.timedelta64(PREPAYMENT_DAYS, "D"))
    return row_problem(payments, early, SCHEMAS["payments"], "payment_date",
                       f"is more than {PREPAYMENT_DAYS} days before its bill's statement_date",
                       "A payment repays a bill already issued (or about to be): fix these dates or the "
                       "payments' bill_id.")


def unknown_account_hint(table: str) -> str:
    return f"Every row of {table} must belong to an account of accounts: add the account or drop these rows."


def _rows_mask(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


# ---------------------------------------------------------------------------------------------- sorting


def is_sorted(frame: pd.DataFrame, by: Sequence[str]) -> bool:
    """Whether rows are in lexicographic order of ``by``: one pass per key, no sort."""
    if len(frame) < 2:
        return True
    columns = [frame[column].to_numpy() for column in by]
    as_ints = [_int64_keys(values) for values in columns]
    if all(a is not None for a in as_ints):  # the usual case: ids and dates, all keys in one compiled pass
        return sorted_keys.lexicographic(tuple(as_ints), np.array([v.dtype.kind == "M" for v in columns]))
    undecided = np.ones(len(frame) - 1, dtype=bool)
    for values in columns:
        as_int = _int64_keys(values)
        if as_int is not None:
            if not sorted_keys.refine_order(as_int, undecided, values.dtype.kind == "M"):
                return False
        else:
            before, after = values[:-1], values[1:]
            if (undecided & (before > after)).any():
                return False
            undecided &= before == after
        if not undecided.any():
            return True
    return True


def _sorted(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    if is_sorted(frame, by):
        return frame
    return frame.sort_values(list(by), kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------- tables


@dataclass(frozen=True, eq=False)
class BillLinks:
    """The row in `bills` of each payment of `payments`, as validation found it: kept with the very frames
    it was found in, so a table swapped afterwards (dataclasses.replace) is never paired with stale rows."""

    bills: pd.DataFrame
    payments: pd.DataFrame
    rows: np.ndarray


@dataclass(frozen=True, eq=False)  # frames do not compare to a bool; identity is the right equality
class Tables:
    """Validated input tables; ``None`` for a table that was not loaded."""

    accounts: pd.DataFrame | None = None
    bills: pd.DataFrame | None = None
    payments: pd.DataFrame | None = None
    limits: pd.DataFrame | None = None
    macro: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    links: BillLinks | None = dataclasses.field(default=None, repr=False)
    extraction: Extraction | None = None  # as validation resolved it (features.extraction)

    def payment_bill_rows(self) -> np.ndarray:
        """Row in bills of each payment's bill (-1 where there is none): the one validation found when these
        are still the frames it checked, else looked up now."""
        bills, payments = self.table("bills"), self.table("payments")
        if self.links is not None and self.links.bills is bills and self.links.payments is payments:
            return self.links.rows
        return bill_rows(bills["bill_id"].to_numpy(np.int64), bills["account_id"].to_numpy(np.int64),
                         payments["bill_id"].to_numpy(np.int64), payments["account_id"].to_numpy(np.int64))

    def table(self, name: str) -> pd.DataFrame:
        """The named table, or a ContractError saying it was not loaded."""
        if name not in ALL_TABLES:
            raise KeyError(f"{name!r} is not a table of the contract ({', '.join(ALL_TABLES)})")
        frame = getattr(self, name)
        if frame is None:
            raise ContractError([Problem(name, "", "was not loaded",
                                         hint=f"Pass {name!r} in require= or optional= of load_tables.")])
        return frame

    def loaded(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in ALL_TABLES if getattr(self, name) is not None}

    @property
    def extraction_date(self) -> pd.Timestamp | None:
        """The day the extract was taken (stated, or derived from event dates); as-of dates after it are refused."""
        if self.extraction is not None:
            return self.extraction.day
        derived = resolve(None, latest_event(self.loaded()))
        return None if derived is None else derived.day


def _latest(dates: pd.Series) -> pd.Timestamp | None:
    """The latest date of a datetime64 column, None if all are NaT: numpy's max of the int64 view (NaT is
    the least int64), because pandas' max copies the column to mask NaT (0.4 s on 20 M bills)."""
    values = dates.to_numpy()
    if values.dtype.kind != "M":
        latest = dates.max()
        return None if pd.isna(latest) else latest
    top = values.view(np.int64).max()
    return None if top == np.iinfo(np.int64).min else pd.Timestamp(np.int64(top).view(values.dtype))


def validate(
    tables: Tables | Mapping[str, pd.DataFrame], *, sources: Mapping[str, str] | None = None,
    extraction: Extraction | None = None,
) -> Tables:
    """Check in-memory tables against the contract; return them converted and sorted, or raise ContractError.

    extraction: the stated extraction date; None derives it from the tables' event dates (features.extraction).
    Tests and adapters use it directly; ``load_tables`` uses it after reading.
    """
    frames = tables.loaded() if isinstance(tables, Tables) else dict(tables)
    if sources is None:
        sources = tables.sources if isinstance(tables, Tables) else {}
    unknown = sorted(set(frames) - set(ALL_TABLES))
    if unknown:
        raise KeyError(f"not tables of the contract: {', '.join(unknown)} (expected {', '.join(ALL_TABLES)})")
    converted: dict[str, pd.DataFrame] = {}
    problems: list[Problem] = []
    for name, frame in frames.items():
        found = _check_table(frame, SCHEMAS[name])
        if isinstance(found, list):
            problems += [_with_source(p, sources.get(name, "")) for p in found]
        else:
            converted[name] = found
    rows = None
    if not problems:
        extraction = extraction or resolve(None, latest_event(converted))
        found, rows = _cross_checks(converted)
        found += _date_checks(converted, extraction) if extraction is not None else []
        problems = [_with_source(p, sources.get(p.table, "")) for p in found if p is not None]
    if problems:
        raise ContractError(problems)
    ordered = {name: _sorted(frame, SCHEMAS[name].sort_by) for name, frame in converted.items()}
    links = None
    if rows is not None and all(ordered[n] is converted[n] for n in ("bills", "payments")):  # not reordered
        links = BillLinks(ordered["bills"], ordered["payments"], rows)
    return Tables(**ordered, sources=dict(sources), links=links, extraction=extraction)


def latest_event(frames: Mapping[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The latest event date of converted tables (features.extraction.EVENT_COLUMNS), None if there is none."""
    latest = [_latest(frame[column]) for name, columns in EVENT_COLUMNS.items()
              if (frame := frames.get(name)) is not None and len(frame) for column in columns]
    latest = [d for d in latest if d is not None]
    return max(latest) if latest else None


def _date_checks(tables: Mapping[str, pd.DataFrame], extraction: Extraction) -> list[Problem | None]:
    """What the extraction date rules out: events after it, due dates past the longest term, and dates that
    contradict each other (a charge-off or a closing before the opening, a bill issued after its account
    closed, a payment long before its bill's statement)."""
    day = np.datetime64(extraction.day, "s")
    out: list[Problem | None] = []
    for name, columns in EVENT_COLUMNS.items():
        frame = tables.get(name)
        for column in columns if frame is not None else ():
            out.append(row_problem(
                frame, _column(frame, column) > day, SCHEMAS[name], column,
                f"is after the extraction date {extraction.text} ({extraction.source})",
                "Nothing dated after the extraction can be known: fix these dates, or state the extraction "
                "date with --extracted-on (or extraction_date in the extract's _manifest.json)."))
    bills, accounts = tables.get("bills"), tables.get("accounts")
    if bills is not None:
        out.append(row_problem(
            bills, _column(bills, "due_date") > np.datetime64(extraction.latest_due, "s"), SCHEMAS["bills"],
            "due_date", f"is more than {LONGEST_TERM_MONTHS} months after the extraction date {extraction.text}",
            f"No product runs longer than {LONGEST_TERM_MONTHS} months: fix these due dates (a placeholder "
            "such as 9999-12-31 is not a due date)."))
    if accounts is not None:
        for column, event in (("charge_off_date", "charged off"), ("close_date", "closed")):
            out.append(row_problem(
                accounts, _column(accounts, column) < _column(accounts, "open_date"), SCHEMAS["accounts"],
                column, "is before accounts.open_date", f"An account is {event} after it opens: fix the extract."))
    if accounts is not None and bills is not None:
        out.append(_bills_after_close(bills, accounts))
    return out


def _bills_after_close(bills: pd.DataFrame, accounts: pd.DataFrame) -> Problem | None:
    """Bills issued after their account closed. A closed account gets no new bill; its last statement may
    still be unpaid on the closing day, and payments after it are fine."""
    close = _column(accounts, "close_date")
    if np.isnat(close).all():  # the usual answer: no account of the extract is closed
        return None
    row = _positions(accounts["account_id"].to_numpy("int64"), bills["account_id"].to_numpy("int64"))
    after = (row >= 0) & (_column(bills, "statement_date") > close[np.maximum(row, 0)])  # NaT compares False
    return row_problem(bills, after, SCHEMAS["bills"], "statement_date", "is after its account's accounts.close_date",
                       "A closed account gets no new bills (its last statement may stay unpaid, and payments after "
                       "the closing are fine): fix the close_date, or drop these bills.")


def _check_table(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame | list[Problem]:
    """The converted table, or the problems found in it alone."""
    missing = missing_columns(frame, schema)
    if missing:
        return [missing]
    converted, problems = convert_frame(frame, schema)
    if problems:
        return problems
    problems = [p for p in _table_checks(converted, schema) if p is not None]
    return problems or converted


def _with_source(problem: Problem, source: str) -> Problem:
    return dataclasses.replace(problem, source=source) if source and not problem.source else problem


# ---------------------------------------------------------------------------------------------- reading


def find_table(data_dir: Path, name: str) -> Path | None:
    """The one file or folder holding ``name``; two candidates is an error (which one is current?)."""
    candidates = [p for p in (data_dir / f"{name}.parquet", data_dir / name, data_dir / f"{name}.csv")
                  if p.exists()]
    if len(candidates) > 1:
        raise ContractError([Problem(
            name, "", f"is found twice in {data_dir} ({', '.join(p.name for p in candidates)})",
            hint="Keep one of them, so there is no doubt which extract is current.")])
    return candidates[0] if candidates else None


def part_files(folder: Path) -> list[Path]:
    """Parquet parts of a folder in file-name order, skipping hidden and marker files (_SUCCESS, .crc)."""
    return sorted(
        (p for p in folder.rglob("*.parquet") if p.is_file() and not p.name.startswith((".", "_"))),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def read_arrow(path: Path, account_range: tuple[int, int] | None = None) -> pa.Table:
    """The whole table, or only the rows of account ids in [lo, hi) (Parquet skips row groups outside it)."""
    keep = None if account_range is None else \
        (pa_ds.field("account_id") >= account_range[0]) & (pa_ds.field("account_id") < account_range[1])
    if path.is_dir():
        parts = part_files(path)
        if not parts:
            raise ValueError("the folder holds no .parquet part files")
        schema = _one_schema(parts)
        return pa_ds.dataset([str(p) for p in parts], schema=schema, format="parquet").to_table(filter=keep)
    if path.suffix == ".csv":
        table = pa_csv.read_csv(path)
        return table if keep is None else pa_ds.dataset(table).to_table(filter=keep)
    return pq.read_table(path, filters=keep)


def _one_schema(parts: list[Path]) -> pa.Schema:
    """The parts' common schema, or a ValueError naming the column and the parts whose types disagree."""
    schemas = [pq.read_schema(p) for p in parts]
    try:
        return pa.unify_schemas(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for field in schemas[0]:
            kinds = {s.field(field.name).type for s in schemas if field.name in s.names}
            if len(kinds) > 1:
                seen = {str(s.field(field.name).type): p.name for s, p in zip(schemas, parts, strict=True)
                        if field.name in s.names}
                raise ValueError(f"its part files disagree on the type of {field.name} (" + ", ".join(
                    f"{kind} in {part}" for kind, part in seen.items()) + "); write every part with one type") from None
        raise


def _column_to_pandas(column: pa.ChunkedArray) -> pd.Series:
    """Arrow to pandas without Python objects: date32 straight to datetime64[s], ints with nulls to Int64.

    Numbers and dates go through one numpy array each, wrapped without a copy (pandas 3 copies arrays
    handed to its constructors unless told not to; at 20 M rows a copy per column is seconds).
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_date32(kind):  # day numbers (NaT where null) times 86,400, chunk by chunk into one array:
        ticks = np.empty(len(column), dtype=np.int64)  # numpy's cast is 10 x slower and a copy more
        start = 0
        for chunk in column.chunks:
            days_to_ticks(chunk.to_numpy(zero_copy_only=False).view(np.int64), 86_400, ticks[start:])
            start += len(chunk)
        return pd.Series(ticks.view("datetime64[s]"), copy=False)
    if pa.types.is_date(kind):
        return pd.Series(column.cast(pa.timestamp("s")).to_numpy(), copy=False)
    small_int = pa.types.is_integer(kind) and (pa.types.is_signed_integer(kind) or kind.bit_width < 64)
    if small_int and column.null_count:
        values = np.empty(len(column), dtype=np.int64)
        start = 0
        for chunk in column.chunks:
            values[start:start + len(chunk)] = integer_values(chunk)
            start += len(chunk)
        return pd.Series(pd.arrays.IntegerArray(values, column.is_null().to_numpy()), copy=False)
    plain = (small_int or pa.types.is_boolean(kind)) and not column.null_count  # nulls would need objects
    if plain or pa.types.is_float64(kind):  # float64 nulls are NaN either way
        return pd.Series(column.to_numpy(), copy=False)
    return column.to_pandas()


def _arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    return pd.DataFrame(
        {name: _column_to_pandas(table.column(i)) for i, name in enumerate(table.column_names)},
        index=pd.RangeIndex(table.num_rows), copy=False,
    )


def read_table(path: Path, name: str, account_range: tuple[int, int] | None = None) -> pd.DataFrame:
    """One table file/folder as pandas; any read failure becomes a ContractError naming the file."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ValueError("the file is empty (0 bytes)")
        if account_range is None and path.suffix != ".csv":
            frame = read_columns(part_files(path) if path.is_dir() else [path])
            if frame is not None:
                return frame
        return _arrow_to_pandas(read_arrow(path, account_range))
    except (OSError, ValueError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError([Problem(
            name, "", f"cannot be read from {path}: {reason}",
            hint="Re-export it as Parquet (or CSV with a header row); "
            "a header-only file is fine for no rows.",
        )]) from None


def load_tables(
    data_dir: str | Path,
    *,
    require: Sequence[str] = CORE_TABLES,
    optional: Sequence[str] = ("macro",),
    account_range: tuple[int, int] | None = None,
    extraction: Extraction | None = None,
) -> Tables:
    """Read the tables of ``data_dir`` (NAME.parquet, NAME/ of parts, or NAME.csv) and validate them.

    Nothing is returned half-loaded: any problem in any table raises one ContractError listing them.
    ``account_range`` = (lo, hi) reads only accounts lo <= account_id < hi (tables without accounts whole):
    how a batch job works through a portfolio in chunks. ``extraction``: the stated extraction date (None:
    derived from the tables' event dates; a chunk must be given the whole extract's).
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise ContractError([Problem("data", "", f"directory {folder} does not exist",
                                     hint="Pass the folder holding accounts, bills, payments and limits.")])
    frames: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    missing: list[Problem] = []
    for name in dict.fromkeys([*require, *optional]):
        if name not in SCHEMAS:
            raise KeyError(f"{name!r} is not a table of the contract ({', '.join(ALL_TABLES)})")
        path = find_table(folder, name)
        if path is None:
            if name in require:
                missing.append(Problem(
                    name, "", f"is not found in {folder} (looked for {name}.parquet, {name}/, {name}.csv)",
                    hint=f"Write the {name} table there, or check the folder name."))
            continue
        in_range = account_range if any(c.name == "account_id" for c in SCHEMAS[name].columns) else None
        frames[name] = read_table(path, name, in_range)
        sources[name] = str(path)
    if missing:
        raise ContractError(missing)
    return validate(frames, sources=sources, extraction=extraction)
