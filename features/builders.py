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
from features.catalog import AGGS, SIGNAL_INDEX, Bills, Catalog, Feature, default_catalog
from features.contract import Tables

DEFAULT_PENALTY_RATE = 0.0005  # 0.05 % a day on the overdue amount (DESIGN.md)
_AGG_CODE = {name: i for i, name in enumerate(AGGS)}


def to_days(values) -> np.ndarray:
    """datetime64 values (NaT allowed) as int64 days since 1970-01-01; NaT becomes kernels.NONE."""
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
        self.is_installment = (acc["product"].to_numpy() == "installment")
        self.open_day = to_days(acc["open_date"])
        self.grace = acc["grace_days"].to_numpy(np.int64)
        term = acc["loan_term"] if "loan_term" in acc else pd.Series(0, index=acc.index)
        self.loan_term = pd.to_numeric(term, errors="coerce").fillna(0).to_numpy(np.int64)
        self.charge_day = to_days(acc["charge_off_date"]) if "charge_off_date" in acc else \
            np.full(len(acc), kernels.NONE)
        self.month_precision = (acc["date_precision"].to_numpy() == "month") if "date_precision" in acc else \
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
        bill_acc = np.repeat(np.arange(len(acc)), np.diff(self.bill_start))
        self.is_stmt = ~self.is_installment[bill_acc] & ~self.has_parent
        self.pday = to_days(pay["payment_date"])
        self.pamt = pay["amount"].to_numpy(np.float64)
        self.prow = _rows_of(bills["bill_id"].to_numpy(np.int64), pay["bill_id"].to_numpy(np.int64))
        self.leff = to_days(lim["effective_date"])
        self.lval = lim["credit_limit"].to_numpy(np.float64)
        self.settle = kernels.settlement_days(self.bill_start, self.due, self.min_due, self.conv, self.pday,
                                              self.pamt, self.prow)
        self.lim_at_stmt = kernels.limit_at(self.stmt, self.bill_start, self.leff, self.lval, self.lim_start)
        self.macro = tables.macro
        self.first_day = int(min(self.open_day.min(initial=kernels.NONE), self.due.min(initial=kernels.NONE)))
        self.extraction = tables.extraction_date


def _starts(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row offsets of each id's run in `keys` (sorted by account); length len(ids) + 1."""
    return np.searchsorted(keys, np.r_[ids, np.iinfo(np.int64).max], side="left").astype(np.int64)


def _rows_of(bill_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    order = np.argsort(bill_ids, kind="stable")
    return order[np.searchsorted(bill_ids[order], wanted)].astype(np.int64)


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


def _assemble(prep: Prepared, days: np.ndarray, catalog: Catalog, penalty_rate: float) -> pd.DataFrame:
    windowed = catalog.windowed
    helper = Feature("_late_n6", "late bills among the last 6, for the customer's other accounts", 0, "helper",
                     Bills(6), "late", "count")
    spec_feats = [*windowed, helper]
    kind, size, fwin, fsig, fagg = _windowed_spec(spec_feats)
    n_t, n_a = len(days), len(prep.account_id)
    out_w = np.empty((n_t, n_a, len(spec_feats)))
    out_s = np.empty((n_t, n_a, len(kernels.STATE)))
    kernels.build(prep.bill_start, prep.pay_start, prep.lim_start, prep.grace, prep.due, prep.stmt, prep.amount,
                  prep.min_due, prep.conv, prep.settle, prep.is_stmt, prep.has_parent, prep.lim_at_stmt, prep.pday,
                  prep.pamt, prep.prow, prep.leff, prep.lval, days, penalty_rate, kind, size, fwin, fsig, fagg,
                  out_w, out_s)
    cols: dict[str, np.ndarray] = {f.name: out_w[:, :, j] for j, f in enumerate(spec_feats)}
    cols.update({name: out_s[:, :, j] for j, name in enumerate(kernels.STATE)})
    _derived(prep, days, cols)
    open_mask = prep.open_day[None, :] <= days[:, None]  # (T, A)
    t_idx, a_idx = np.nonzero(open_mask)
    frame = {"account_id": prep.account_id[a_idx],
             "as_of": days[t_idx].astype("datetime64[D]").astype("datetime64[s]")}
    month = prep.month_precision[a_idx]
    for f in catalog:
        if f.name not in cols:
            raise ValueError(f"catalog feature {f.name!r} is a state feature the builder does not know; "
                             "declare it with a signal, agg and window, or add it to features/builders.py")
        values = cols[f.name][t_idx, a_idx]
        if f.day_precision and month.any():
            values = np.where(month, np.nan, values)
        frame[f.name] = values
    return pd.DataFrame(frame)


def _derived(prep: Prepared, days: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """State features computed from the kernel's outputs, account attributes, the customer and macro."""
    if "util_n3" in cols and "util_n12" in cols:
        cols["util_trend"] = cols["util_n3"] - cols["util_n12"]
    limit = cols["limit_now"]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["util_now"] = np.where(limit > 0, cols["balance_now"] / limit, np.nan)
        cols["limit_ratio_d360"] = np.where(cols["limit_prev_d360"] > 0, limit / cols["limit_prev_d360"], np.nan)
    cols["tenure_days"] = (days[:, None] - prep.open_day[None, :]).astype(np.float64)
    cols["is_installment"] = np.broadcast_to(prep.is_installment.astype(np.float64), cols["limit_now"].shape)
    _customer(prep, days, cols)
    _macro(prep, days, cols)


def _customer(prep: Prepared, days: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """The customer's other accounts: accounts are sorted by account id, customers may interleave."""
    cust = prep.customer_id
    if not len(cust):
        for name in ("cust_accounts", "cust_other_late_n6", "cust_active_loans", "cust_loan_balance",
                     "cust_other_dpd_now"):
            cols[name] = np.empty((len(days), 0))
        return
    order = np.argsort(cust, kind="stable")
    starts = np.flatnonzero(np.r_[True, cust[order][1:] != cust[order][:-1]])
    group = np.empty(len(cust), dtype=np.int64)
    group[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(cust)]))
    is_open = (prep.open_day[None, :] <= days[:, None]).astype(np.float64)  # (T, A)
    dpd = np.where(is_open > 0, cols["dpd_now"], -np.inf)
    late6 = np.where(is_open > 0, cols["_late_n6"], 0.0)
    loan = prep.is_installment[None, :] & (cols["balance_now"] > 0) & (is_open > 0)

    def per_customer_sum(x):
        return np.add.reduceat(x[:, order], starts, axis=1)[:, group]

    n_open = per_customer_sum(is_open)
    cols["cust_accounts"] = n_open
    cols["cust_other_late_n6"] = per_customer_sum(late6) - late6
    cols["cust_active_loans"] = per_customer_sum(loan.astype(np.float64))
    cols["cust_loan_balance"] = per_customer_sum(np.where(loan, cols["balance_now"], 0.0))
    # worst DPD on the other accounts: the group maximum, or the runner-up where this account is the maximum
    srt = dpd[:, order]
    top = np.maximum.reduceat(srt, starts, axis=1)
    top_g = top[:, group]
    is_top = dpd == top_g
    n_top = per_customer_sum(is_top.astype(np.float64))
    masked = np.where(is_top, -np.inf, dpd)
    second = np.maximum.reduceat(masked[:, order], starts, axis=1)[:, group]
    other = np.where(is_top & (n_top < 2), second, top_g)
    other = np.where(n_open - is_open > 0, other, np.nan)
    cols["cust_other_dpd_now"] = np.where(np.isfinite(other), other, np.nan)


def _macro(prep: Prepared, days: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """The latest published value of each macro indicator as of T (NaN before the first publication)."""
    shape = cols["limit_now"].shape
    macro = prep.macro
    if macro is None or not len(macro):
        macro = pd.DataFrame(columns=["month", "published_date"])
    pub = to_days(macro["published_date"])
    order = np.argsort(pub, kind="stable")
    idx = np.searchsorted(pub[order], days, side="right") - 1
    for name in macro.columns:
        if name in ("month", "published_date"):
            continue
        vals = macro[name].to_numpy(np.float64)[order]
        per_t = np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)
        cols[f"macro_{name}"] = np.broadcast_to(per_t[:, None], shape)
    for name in ("stress_index", "unemployment_rate"):  # indicators this source does not publish: missing
        cols.setdefault(f"macro_{name}", np.full(shape, np.nan))
