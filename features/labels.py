"""Labels: what happened after T, by the one definition of DESIGN.md's Targets section.

A label as of T looks only at its performance window after T and at nothing beyond it: a payment or a
bill after the window's end cannot change it. Outside a target's population the label is missing (NaN);
a row whose window is not complete by the data's extraction date is marked incomplete, so the panel can
leave it out (and count it) rather than call an unfinished story a good outcome.

  default                 reaches `default_dpd` (30) DPD within `default_months` (6) after T; population:
                          on the book at T, below `default_dpd` DPD at T. `default_dpd=90` gives the
                          Basel / IFRS 9 style variant.
On the book at T (Prepared.on_book): opened by T, and neither charged off nor closed (accounts.close_date) on
or before T. An account closed on day C is in no population from C on; as of an earlier T its labels are
decided by the bills it has, even when C falls inside the window. A cash loan whose installments
(accounts.loan_term, when known) are all due and paid is closed too, with or without a close_date.

  early_warning           for accounts below 30 DPD at T (not in arrears): the first bill due after T (within
                          `early_warning_days`) is settled 1+ days late or still unpaid a day after its due date
  early_warning_beyond_grace   ... later than the account's grace days
  self_cure               for accounts 1-29 DPD at T: back to 0 DPD within `self_cure_days` (30) after T
                          without reaching 30 DPD
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from features import kernels
from features.builders import Prepared, as_of_days, to_days
from features.targets import SLOT, TARGET_NAMES, LabelConfig

DEFAULT, EARLY_WARNING, BEYOND_GRACE, SELF_CURE = (SLOT[n] for n in ("default", "early_warning",
                                                                 "early_warning_beyond_grace", "self_cure"))



def window_end(days: np.ndarray, months: int) -> np.ndarray:
    """T + `months` calendar months; a month-end T maps to the month end `months` later."""
    stamps = pd.to_datetime(days.astype("datetime64[D]"))
    month_end = stamps.is_month_end
    plain = stamps + pd.DateOffset(months=months)
    ends = stamps + pd.offsets.MonthEnd(months)
    return to_days(np.where(month_end, ends, plain).astype("datetime64[D]"))


@njit(cache=True)
def first_due_after(T, due, b0, b1):
    """The first due date after T among bills b0..b1 (ordered by due date), NONE if there is none."""
    for i in range(b0, b1):
        if due[i] > T:
            return due[i]
    return kernels.NONE


@njit(cache=True)
def _label_one(a, T, end, bill_start, due, settle, grace, open_day, exit_day, loan_term, default_dpd, ew_days,
               cure_days, last_day, out, complete):
    """Account a's labels as of day T into out/complete (one slot per target, SLOT order); NaN outside a
    target's population. `end`: the default window's last day."""
    for j in range(out.shape[0]):
        out[j] = np.nan
        complete[j] = False
    if open_day[a] > T or exit_day[a] <= T:  # not on the book (Prepared.on_book)
        return
    b0, b1 = bill_start[a], bill_start[a + 1]
    dpd = 0
    n_due = 0
    unpaid = False
    for i in range(b0, b1):
        if due[i] <= T:
            n_due += 1
            if settle[i] > T:
                dpd = max(dpd, T - due[i])
                unpaid = True
    if loan_term[a] > 0 and n_due >= loan_term[a] and not unpaid:
        return  # a cash loan whose installments are all due and paid is closed
    # default: a bill unpaid at due + default_dpd, with that day inside (T, end]
    if dpd < default_dpd:
        hit = 0.0
        for i in range(b0, b1):
            d = due[i] + default_dpd
            if d > T and d <= end and settle[i] > d:
                hit = 1.0
        out[DEFAULT] = hit
        complete[DEFAULT] = end <= last_day
    # early warning, for accounts not in arrears (below 30 DPD): the first bill(s) due after T
    first = kernels.NONE if dpd >= 30 else first_due_after(T, due, b0, b1)
    if first <= T + ew_days:
        lag1 = 0.0
        beyond = 0.0
        for i in range(b0, b1):
            if due[i] == first:
                if settle[i] > first:
                    lag1 = 1.0
                if settle[i] > first + grace[a]:
                    beyond = 1.0
        out[EARLY_WARNING] = lag1
        out[BEYOND_GRACE] = beyond
        complete[EARLY_WARNING] = first + 1 <= last_day
        complete[BEYOND_GRACE] = first + grace[a] + 1 <= last_day
    # self-cure: 1-29 DPD now; a day in (T, T + cure_days] with every due bill settled, 30 DPD not reached
    if dpd >= 1 and dpd <= 29:
        cured = 0.0
        for c in range(b0, b1):  # candidate days: settlement days inside the window
            d = settle[c]
            if d <= T or d > T + cure_days:
                continue
            ok = True
            for i in range(b0, b1):
                if due[i] <= d and settle[i] > d:
                    ok = False
                    break
                if due[i] + 30 > T and due[i] + 30 <= d and settle[i] > due[i] + 30:
                    ok = False
                    break
            if ok:
                cured = 1.0
                break
        out[SELF_CURE] = cured
        complete[SELF_CURE] = T + cure_days <= last_day


@njit(cache=True)
def _pair_labels(account, day, default_end, bill_start, due, settle, grace, open_day, exit_day, loan_term,
                 default_dpd, ew_days, cure_days, last_day, out, complete):
    """out/complete: (pairs, targets) for each (account position, day) pair."""
    for p in range(len(account)):
        _label_one(account[p], day[p], default_end[p], bill_start, due, settle, grace, open_day, exit_day,
                   loan_term, default_dpd, ew_days, cure_days, last_day, out[p], complete[p])


def _last_day(prep: Prepared) -> int:
    return int(to_days(np.array([prep.extraction.to_datetime64()]))[0]) if prep.extraction is not None else 0


def pair_labels(prep: Prepared, account: np.ndarray, day: np.ndarray,
                config: LabelConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, complete), each (pairs, targets) in SLOT order, for accounts (positions in `prep`) each as of
    its own day: what `build_labels` gives those accounts at those days."""
    config = config or LabelConfig()
    account, day = np.asarray(account, dtype=np.int64), np.asarray(day, dtype=np.int64)
    days, at = np.unique(day, return_inverse=True)
    out = np.empty((len(day), len(TARGET_NAMES)))
    complete = np.empty((len(day), len(TARGET_NAMES)), dtype=bool)
    _pair_labels(account, day, window_end(days, config.default_months)[at], prep.bill_start, prep.due_day,
                 prep.settled_day, prep.grace_days, prep.open_day, prep.exit_day, prep.loan_term,
                 config.default_dpd, config.early_warning_days, config.self_cure_days, _last_day(prep), out, complete)
    return out, complete


def build_labels(tables, as_of, config: LabelConfig | None = None) -> pd.DataFrame:
    """One row per account on the book at each T: a label and a `complete_*` flag per target."""
    prep = tables if isinstance(tables, Prepared) else Prepared(tables)
    days = as_of_days(as_of, prep)
    t_idx, a_idx = np.nonzero(prep.on_book(days[:, None]))  # date by date in account order
    out, complete = pair_labels(prep, a_idx, days[t_idx], config)
    kept = ~np.isnan(out).all(axis=1)  # closed loans have no label at all
    t_idx, a_idx, out, complete = t_idx[kept], a_idx[kept], out[kept], complete[kept]
    frame = {"account_id": prep.account_id[a_idx],
             "as_of": days[t_idx].astype("datetime64[D]").astype("datetime64[s]")}
    for name in TARGET_NAMES:
        frame[name] = out[:, SLOT[name]]
    for name in TARGET_NAMES:
        frame[f"complete_{name}"] = complete[:, SLOT[name]]
    return pd.DataFrame(frame)
