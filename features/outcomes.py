"""Monthly repayment outcomes per account as known at T: what the latent-state filter observes.

A bill's outcome is one of six categories of its lag (settled day - due day): early (< 0), on time (0),
one day, two days, late (3-29 days) and missed (30 days or more, or never settled). At T a bill due by T
and unpaid is known only to be at least T - due + 1 days late: an interval of categories (censored), which
narrows to "missed" once it is 29 days past due; a bill settled by T is known exactly. A bill due after T is not
observed. Accounts of month precision (coarse sources) never know 1- or 2-day lags: a bill of theirs paid
within 30 days is only "early to late". An account's outcome in a calendar month is the worst of the bills
due that month, so it is an interval [lo, hi] of categories too; -1 marks a month with no bill due by T.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from features.builders import Prepared
from features.kernels import NONE

CATEGORIES = ("early", "on_time", "lag1", "lag2", "late", "missed")
EARLY, ON_TIME, LAG1, LAG2, LATE, MISSED = range(6)
MISSED_DAYS = 30  # a bill this many days past due is missed, whatever happens later
UNOBSERVED = -1


def lag_category(lag: np.ndarray) -> np.ndarray:
    """The category of each lag in days (NONE-sized lags: never settled, missed): the compiled passes' own
    `_category`, one definition for both."""
    lag = np.asarray(lag, dtype=np.int64)
    out = np.empty(lag.shape, np.int8)
    _categories(lag.ravel(), out.ravel())
    return out


def month_number(days: np.ndarray) -> np.ndarray:
    """Calendar months since 1970-01 of int64 day numbers."""
    return np.asarray(days).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


class BillOutcomes:
    """Each bill's final category, the day it becomes known, its account and its due month: the intervals as
    of any T (`as_of`) follow from these in one compiled pass, with no pass over the payments."""

    def __init__(self, prep: Prepared) -> None:
        n = len(prep.due_day)
        self.due = prep.due_day
        self.account, self.known_day, self.month = (np.empty(n, np.int64) for _ in range(3))
        self.final_lo, self.final_hi = np.empty(n, np.int8), np.empty(n, np.int8)
        # one compiled pass (the numpy version's temporaries took 0.13 s of a 125 k-account scoring chunk):
        # `lag_category` of the lag, "early to late" for month-precision accounts, known at settlement or 30
        # days past due, whichever comes first, and `month_number` of the due day
        due = np.asarray(prep.due_day, np.int64)
        first = int(due.min()) if n else 0
        days = np.arange(first, int(due.max()) + 1 if n else first)  # the calendar once, not once per bill
        _bills(np.asarray(prep.bill_start, np.int64), due, np.asarray(prep.settled_day, np.int64),
               np.asarray(prep.month_precision, np.bool_), first, month_number(days), self.account, self.final_lo,
               self.final_hi, self.known_day, self.month)
        self.n_accounts = len(prep.account_id)
        self.first_month = int(self.month.min()) if len(self.month) else 0
        # who holds each account: the filter follows customers, across their accounts
        self.account_id = prep.account_id
        self.customer_id = prep.customer_id
        self.income_band = prep.income_band

    def as_of(self, day: int, first_month: int, n_months: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (accounts x months) int8, months first_month .. first_month + n_months - 1, as known at
        the end of `day`: bills due after it are unobserved, unpaid ones censored at their days past due."""
        lo = np.full((self.n_accounts, n_months), UNOBSERVED, np.int8)
        hi = np.full((self.n_accounts, n_months), UNOBSERVED, np.int8)
        _intervals(self.account, self.month, self.due, self.known_day, self.final_lo, self.final_hi, int(day),
                   int(first_month), lo, hi)
        return lo, hi


@njit(cache=True)
def _category(lag: int) -> int:
    if lag < 0:
        return EARLY
    if lag <= 2:  # 0, 1 or 2 days: on time, lag1, lag2
        return ON_TIME + lag
    return LATE if lag < MISSED_DAYS else MISSED


@njit(cache=True)
def _categories(lag, out):
    for i in range(len(lag)):
        out[i] = _category(lag[i])


@njit(cache=True)
def _bills(bill_start, due, settle, month_precision, first_day, month_of_day, account, final_lo, final_hi,
           known_day, month):
    """Each bill's account, final interval, day known and due month (see BillOutcomes); `month_of_day` holds
    the month number of each day from `first_day` on."""
    for a in range(len(bill_start) - 1):
        for i in range(bill_start[a], bill_start[a + 1]):
            account[i] = a
            settled = settle[i] < NONE
            cat = _category(settle[i] - due[i]) if settled else MISSED
            if month_precision[a] and cat < MISSED:
                final_lo[i], final_hi[i] = EARLY, LATE
            else:
                final_lo[i], final_hi[i] = cat, cat
            known_day[i] = min(settle[i] if settled else NONE, due[i] + MISSED_DAYS)
            month[i] = month_of_day[due[i] - first_day]


@njit(cache=True)
def _intervals(account, month, due, known_day, final_lo, final_hi, day, first_month, lo, hi):
    """Each bill due by `day` in the months of `lo` widens its account-month's interval to the worst bill seen:
    one pass in the bills' own order (sorting them by month first cost more than it saved)."""
    n_months = lo.shape[1]
    for i in range(len(due)):
        m = month[i] - first_month
        if due[i] > day or m < 0 or m >= n_months:
            continue
        if known_day[i] <= day:
            b_lo, b_hi = final_lo[i], final_hi[i]
        else:  # unpaid: at least day - due + 1 days late
            b_lo, b_hi = _category(day - due[i] + 1), MISSED
        a = account[i]
        if b_lo > lo[a, m]:
            lo[a, m] = b_lo
        if b_hi > hi[a, m]:
            hi[a, m] = b_hi
