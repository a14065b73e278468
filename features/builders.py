"""Point-in-time repayment features.

Everything here answers one question: what did we know about this account at the end of day T? A payment
dated after T has not happened yet; a bill due after T has not fallen due; a limit effective after T is not
in force. One call builds the whole catalog for every account and many as-of dates: the tables are turned
into day-number arrays once, each bill's settlement day is found once, and a compiled kernel walks every
account's history once per as-of date (features/kernels.py).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features import kernels
from features.catalog import AGGS, SIGNAL_INDEX, Catalog, Feature, default_catalog
from features.contract import Tables
from features.days import ticks_per_day, ticks_to_days
from features.sorted_keys import nondecreasing

DEFAULT_PENALTY_RATE = 0.0005  # 0.05 % a day on the overdue amount (DESIGN.md)
_AGG_CODE = {name: i for i, name in enumerate(AGGS)}


def to_days(values) -> np.ndarray:
    """datetime64 values (NaT allowed) as int64 days since 1970-01-01; NaT becomes kernels.NONE."""
    arr = np.asarray(values)
    per_day = ticks_per_day(arr.dtype) if arr.dtype.kind == "M" else 0
    if per_day:  # the raw counts, floor-divided: what a cast to days gives, compiled
        return ticks_to_days(np.ascontiguousarray(arr).view(np.int64), per_day, kernels.NONE)
    arr = np.asarray(values, dtype="datetime64[D]")
    out = arr.astype(np.int64)
    out[np.isnat(arr)] = kernels.NONE
    return out


class Prepared:
    """The tables as sorted day-number arrays, with settlement days and limits at statement dates."""

    def __init__(self, tables: Tables) -> None:
        acc, bills, pay, lim = tables.accounts, tables.bills, tables.payments, tables.limits
        self.account_id = acc["account_id"].to_numpy(np.int64)
        self.customer_id = acc["customer_id"].to_numpy(np.int64)
        self.is_installment = (acc["product"] == "installment").to_numpy(bool)  # compared by Arrow, not objects
        self.open_day = to_days(acc["open_date"])
        self.grace = acc["grace_days"].to_numpy(np.int64)
        self.grace_days = self.grace.astype(np.float64)
        band = acc["income_band"] if "income_band" in acc else pd.Series(np.nan, index=acc.index)
        self.income_band = pd.to_numeric(band, errors="coerce").astype(np.float64).to_numpy()
        term = acc["loan_term"] if "loan_term" in acc else pd.Series(0, index=acc.index)
        self.loan_term = pd.to_numeric(term, errors="coerce").fillna(0).to_numpy(np.int64)
        self.charge_day = to_days(acc["charge_off_date"]) if "charge_off_date" in acc else \
            np.full(len(acc), kernels.NONE)
        self.month_precision = (acc["date_precision"] == "month").to_numpy(bool) if "date_precision" in acc else \
            np.zeros(len(acc), dtype=bool)
        self.bill_start = _starts(bills["account_id"].to_numpy(np.int64), self.account_id)
        self.pay_start = _starts(pay["account_id"].to_numpy(np.int64), self.account_id)
        self.lim_start = _starts(lim["account_id"].to_numpy(np.int64), self.account_id)
        self.due = to_days(bills["due_date"])
        self.stmt = to_days(bills["statement_date"])
        self.amount = bills["amount_due"].to_numpy(np.float64)
        self.min_due = bills["min_due"].to_numpy(np.float64)
        self.conv = to_days(bills["converted_date"])
        self.has_parent = bills["parent_bill_id"].notna().to_numpy()
        self.is_stmt = kernels.statement_bills(self.bill_start, self.is_installment, self.has_parent)
        self.pday = to_days(pay["payment_date"])
        self.pamt = pay["amount"].to_numpy(np.float64)
        self.prow = tables.payment_bill_rows()
        self.leff = to_days(lim["effective_date"])
        self.lval = lim["credit_limit"].to_numpy(np.float64)
        self.settle = kernels.settlement_days(self.bill_start, self.pay_start, self.due, self.min_due, self.conv,
                                              self.pday, self.pamt, self.prow)
        self.stable = kernels.stable_days(self.bill_start, self.pay_start, self.settle, self.conv, self.pday,
                                          self.prow)
        self.lim_at_stmt = kernels.limit_at(self.stmt, self.bill_start, self.leff, self.lval, self.lim_start)
        self.macro = tables.macro
        self.first_day = int(min(self.open_day.min(initial=kernels.NONE), self.due.min(initial=kernels.NONE)))
        self.extraction = tables.extraction_date


def _starts(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row offsets of each id's run in `keys` (sorted by account); length len(ids) + 1."""
    if nondecreasing(keys) and nondecreasing(ids):
        return kernels.run_starts(keys, ids)
    return np.searchsorted(keys, np.r_[ids, np.iinfo(np.int64).max], side="left").astype(np.int64)


def as_of_days(as_of: Iterable | str | pd.Timestamp, prep: Prepared | None = None) -> np.ndarray:
    """Sorted, unique as-of days; refused before any data or after the extraction date."""
    values = [as_of] if isinstance(as_of, str | pd.Timestamp | np.datetime64) else list(as_of)
    try:
        stamps = pd.to_datetime(pd.Series(values, dtype=object))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"as-of dates must be dates (YYYY-MM-DD): {exc}") from None
    if stamps.isna().any() or (stamps != stamps.dt.normalize()).any():
        raise ValueError("as-of dates must be calendar days without a time of day")
    days = np.unique(to_days(stamps.to_numpy()))
    if prep is not None and prep.extraction is not None and len(prep.due) + len(prep.open_day):
        last = to_days(np.array([prep.extraction.to_datetime64()]))[0]
        late = days[days > last]
        early = days[days < prep.first_day]
        if len(late):
            raise ValueError(f"as-of date {_day(late[0])} is after the data's extraction date {_day(last)}: "
                             "nothing after the extraction is known; choose an earlier date")
        if len(early):
            raise ValueError(f"as-of date {_day(early[0])} is before any data (first date {_day(prep.first_day)}): "
                             "choose a later date")
    return days


def _day(d: int) -> str:
    return str(np.datetime64(int(d), "D"))


def build_features(tables: Tables, as_of, catalog: Catalog | None = None, *,
                   penalty_rate: float = DEFAULT_PENALTY_RATE) -> pd.DataFrame:
    """Every catalog feature for every account open at each as-of date T (end of day).

    Returns one row per (account, T) with columns account_id, as_of, then the catalog's features in order.
    """
    catalog = catalog or default_catalog()
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    days = as_of_days(as_of, prep)
    return _assemble(prep, days, catalog, penalty_rate)


def _windowed_spec(windowed: list[Feature]):
    windows = list(dict.fromkeys(f.window for f in windowed))
    kind = np.array([w.kind for w in windows], dtype=np.int64)
    size = np.array([w.d if w.kind == 2 else w.n for w in windows], dtype=np.int64)
    fwin = np.array([windows.index(f.window) for f in windowed], dtype=np.int64)
    fsig = np.array([SIGNAL_INDEX[f.signal] for f in windowed], dtype=np.int64)
    fagg = np.array([_AGG_CODE[f.agg] for f in windowed], dtype=np.int64)
    return kind, size, fwin, fsig, fagg


_CUSTOMER = ("cust_accounts", "cust_active_loans", "cust_loan_balance", "cust_other_dpd_now")
_DERIVED = ("util_now", "limit_ratio_d360", "tenure_days", "is_installment")
_ROW_DERIVED = ("installments_left", "calendar_month")  # numpy over the finished columns
_ATTRIBUTES = ("grace_days", "income_band")  # static account attributes, known from the account's opening


def _sources(catalog: Catalog, prep: Prepared) -> dict[str, str]:
    """What computes each known column: later kinds win a name, as they always have."""
    windowed = {f.name for f in catalog.windowed}
    src = dict.fromkeys(windowed, "windowed")
    src.update({f.name: "others" for f in catalog.others})
    src.update(dict.fromkeys(kernels.STATE, "state"))
    if "util_n3" in windowed and "util_n12" in windowed:
        src["util_trend"] = "derived"
    src.update(dict.fromkeys(_DERIVED + _ROW_DERIVED, "derived"))
    src.update(dict.fromkeys(_CUSTOMER, "customer"))
    src.update(dict.fromkeys(_ATTRIBUTES, "attribute"))
    src.update(dict.fromkeys(_macro_names(prep), "macro"))
    return src


def _macro_table(prep: Prepared) -> pd.DataFrame:
    macro = prep.macro
    if macro is None or not len(macro):
        macro = pd.DataFrame(columns=["month", "published_date"])
    return macro


def _macro_names(prep: Prepared) -> list[str]:
    names = [f"macro_{c}" for c in _macro_table(prep).columns if c not in ("month", "published_date")]
    return list(dict.fromkeys([*names, "macro_stress_index", "macro_unemployment_rate"]))


def _assemble(prep: Prepared, days: np.ndarray, catalog: Catalog, penalty_rate: float) -> pd.DataFrame:
    """The kernel writes every column straight into its place: one (columns, rows) array whose rows of
    the output are (as-of date, open account) pairs, date-major; the frame's float block is that array."""
    sources = _sources(catalog, prep)
    names = catalog.names
    for f in catalog:
        if f.name not in sources:
            raise ValueError(f"catalog feature {f.name!r} is a state feature the builder does not know; "
                             "declare it with a signal, agg and window, or add it to features/builders.py")
    col = {name: i for i, name in enumerate(names)}
    # each account's own count behind an `others` feature: computed apart, summed over the customer below
    own = {f.name: Feature(f"_own_{f.name}", f.description, 0, "helper", f.window, f.signal, "count")
           for f in catalog.others if sources[f.name] == "others"}
    # windowed features the kernel computes: catalog ones whose name no later kind takes, and the helpers
    spec = [f for f in catalog.windowed if sources[f.name] == "windowed"] + list(own.values())
    # the kernel's columns go to their catalog column, or apart (aux) when the catalog does not show them
    kernel_names = [f.name for f in spec] + list(kernels.STATE)
    aux_names = [n for n in kernel_names if n not in col]
    where = {n: col[n] if n in col else -1 - aux_names.index(n) for n in kernel_names}
    kind, size, fwin, fsig, fagg = _windowed_spec(spec)
    # whole-number signals counted, summed or averaged: by running sums over the account's stable bills
    prefix = np.array([SIGNAL_INDEX[f.signal] in kernels.INTEGER_SIGNALS and f.agg in ("count", "sum", "mean")
                       for f in spec], dtype=np.bool_)
    feat_col = np.array([where[f.name] for f in spec], dtype=np.int64)
    state_col = np.array([where[n] for n in kernels.STATE], dtype=np.int64)

    row_off, blk_row, a_idx = kernels.row_layout(prep.open_day, days, kernels.BLOCK)
    n_rows = len(a_idx)
    out = np.empty((len(names), n_rows))
    aux = np.empty((len(aux_names), n_rows))
    kernels.build(prep.bill_start, prep.pay_start, prep.lim_start, prep.grace, prep.open_day, prep.due, prep.stmt,
                  prep.amount, prep.min_due, prep.conv, prep.settle, prep.stable, prep.is_stmt, prep.has_parent,
                  prep.lim_at_stmt, prep.pday, prep.pamt, prep.prow, prep.leff, prep.lval, days, blk_row, penalty_rate,
                  kind, size, fwin, fsig, fagg, prefix, feat_col, state_col, out, aux)

    def column(name: str) -> np.ndarray:
        i = where[name]
        return out[i] if i >= 0 else aux[-1 - i]

    def target(name: str) -> np.ndarray | None:
        return out[col[name]] if name in col and sources[name] in ("derived", "customer", "others", "macro") else None

    _customer(prep, days, row_off, a_idx, column, {n: col[n] for n in _CUSTOMER if target(n) is not None},
              [(col[name], -1 - where[h.name], h.day_precision) for name, h in own.items()], aux, out)
    macro_cols, macro_vals = _macro(prep, days, col, target)
    empty = np.empty(0)
    trend = target("util_trend") is not None
    want = np.array([col[n] if target(n) is not None else -1 for n in ("util_trend", *_DERIVED)], dtype=np.int64)
    day_cols = np.array([col[f.name] for f in catalog if f.day_precision], dtype=np.int64)
    kernels.finish(days, row_off, a_idx, prep.open_day, prep.is_installment, prep.month_precision,
                   column("util_n3") if trend else empty, column("util_n12") if trend else empty,
                   column("balance_now"), column("limit_now"), column("limit_prev_d360"), want, macro_cols,
                   macro_vals, day_cols, out)
    if target("installments_left") is not None:
        term = prep.loan_term[a_idx].astype(np.float64)
        known = prep.is_installment[a_idx] & (term > 0)
        out[col["installments_left"]] = np.where(known, np.maximum(term - column("bills_due"), 0.0), np.nan)
    if target("calendar_month") is not None:
        month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
        out[col["calendar_month"]] = np.repeat(month.astype(np.float64), np.diff(row_off))
    for name in _ATTRIBUTES:
        if name in col and sources[name] == "attribute":
            out[col[name]] = getattr(prep, name)[a_idx]
    frame = pd.DataFrame(out.T, columns=names, copy=False)
    frame.insert(0, "as_of", np.repeat(days * 86_400, np.diff(row_off)).view("datetime64[s]"))
    frame.insert(0, "account_id", prep.account_id[a_idx])
    return frame


def _customer(prep: Prepared, days: np.ndarray, row_off: np.ndarray, a_idx: np.ndarray, column,
              cols: dict[str, int], others: list[tuple[int, int, bool]], aux: np.ndarray, out: np.ndarray) -> None:
    """The customer's other accounts: accounts are sorted by account id, customers may interleave. `others`
    pairs an output row with the row of aux holding each account's own count (and whether that count needs
    day-exact dates), to be summed over the customer's other accounts."""
    cust = prep.customer_id
    if not (cols or others) or not len(cust):
        return
    order = np.argsort(cust, kind="stable").astype(np.int64)
    srt = cust[order]
    group_start = np.flatnonzero(np.r_[True, srt[1:] != srt[:-1], True]).astype(np.int64)
    rows = kernels.account_rows(days, row_off, a_idx, len(cust))
    if cols:
        wanted = np.array([cols.get(n, -1) for n in _CUSTOMER], dtype=np.int64)
        kernels.customer(order, group_start, rows, prep.is_installment, column("dpd_now"), column("balance_now"),
                         wanted, out)
    if others:
        dest = np.array([c for c, _, _ in others], dtype=np.int64)
        src_rows = np.array([r for _, r, _ in others], dtype=np.int64)
        day_exact = np.array([d for _, _, d in others], dtype=bool)
        kernels.others(order, group_start, rows, aux, src_rows, day_exact, prep.month_precision, dest, out)


def _macro(prep: Prepared, days: np.ndarray, col: dict[str, int], target) -> tuple[np.ndarray, np.ndarray]:
    """The latest published value of each macro indicator as of T (NaN before the first publication): the
    output rows wanted and their values by date."""
    macro = _macro_table(prep)
    pub = to_days(macro["published_date"])
    order = np.argsort(pub, kind="stable")
    idx = np.searchsorted(pub[order], days, side="right") - 1
    per_t: dict[str, np.ndarray] = {}
    for name in macro.columns:
        if name in ("month", "published_date"):
            continue
        vals = macro[name].to_numpy(np.float64)[order]
        per_t[f"macro_{name}"] = np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)
    for name in ("stress_index", "unemployment_rate"):  # indicators this source does not publish: missing
        per_t.setdefault(f"macro_{name}", np.full(len(days), np.nan))
    names = [name for name in per_t if target(name) is not None]
    cols = np.array([col[name] for name in names], dtype=np.int64)
    return cols, np.array([per_t[name] for name in names]).reshape(len(names), len(days))
