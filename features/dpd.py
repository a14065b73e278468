"""Days past due and book status of every account at a list of days: the portfolio's month-end snapshots.

What a reviewer's vintage curves and roll rates read, by DESIGN.md's conventions: at the end of day T a bill
due by T and not settled by T is past due with DPD = T - due date, and an account's DPD is the largest over its
bills (the catalog's `dpd_now`, value for value). Its worst DPD to date is the largest DPD it showed at the end
of any day up to T: a bill settled on day S was T - due days past due at most on day S - 1. Nothing dated
after T is read: a payment, a conversion, a closing or a charge-off after T has not happened yet.

One compiled pass over each account's bills (in due-date order) per day, accounts in parallel: 1 M accounts
with 24 bills each at 36 month ends is about a billion bill visits, a few seconds on two cores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit, prange

from features.builders import Prepared, as_of_days

STATUSES = ("not_open", "on_book", "closed", "charged_off")
NOT_OPEN, ON_BOOK, CLOSED, CHARGED_OFF = range(len(STATUSES))


@dataclass(frozen=True)
class DpdAt:
    """Accounts (rows, in `account_id` order) by days (columns, ascending day numbers since 1970-01-01).

    dpd: days past due at the end of the day; worst_dpd: the worst DPD at the end of any day up to it;
    status: a code of STATUSES (not yet open, on the book, closed or repaid, charged off). A charge-off beats
    a closing; an account charged off or closed keeps the DPD of the bills it left unpaid.
    """

    account_id: np.ndarray
    days: np.ndarray
    dpd: np.ndarray
    worst_dpd: np.ndarray
    status: np.ndarray

    def dates(self) -> np.ndarray:
        """The days as datetime64[s], as the feature frames write as_of."""
        return (self.days * 86_400).view("datetime64[s]")

    def frame(self) -> pd.DataFrame:
        """One row per account opened by each day, date by date in account order: account_id, as_of, dpd,
        worst_dpd and status (a categorical of STATUSES)."""
        t_idx, a_idx = np.nonzero(self.status.T != NOT_OPEN)
        return pd.DataFrame({
            "account_id": self.account_id[a_idx],
            "as_of": self.dates()[t_idx],
            "dpd": self.dpd[a_idx, t_idx],
            "worst_dpd": self.worst_dpd[a_idx, t_idx],
            "status": pd.Categorical.from_codes(self.status[a_idx, t_idx], STATUSES),
        })


def dpd_at(prep: Prepared, days) -> DpdAt:
    """Every account's DPD, worst DPD to date and status at the end of each of `days` (dates; sorted and made
    unique, refused after the extraction date or before any data, as every as-of date is).

    On the book means opened by T and neither charged off nor closed on or before T (Prepared.on_book), and,
    as for the targets' populations (features/labels.py), not a cash loan whose `loan_term` installments are
    all due and settled by T: that loan is repaid, so closed, with or without a close_date.
    """
    days = as_of_days(days, prep)
    shape = (len(prep.account_id), len(days))
    dpd, worst = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    status = np.zeros(shape, np.int8)
    _snapshots(prep.bill_start, prep.due_day, prep.settled_day, prep.open_day, prep.charge_off_day,
               prep.close_day, prep.loan_term, days, dpd, worst, status)
    return DpdAt(prep.account_id, days, dpd, worst, status)


@njit(parallel=True, cache=True)
def _snapshots(bill_start, due, settled, open_day, charge_off_day, close_day, loan_term, days, dpd, worst, status):
    """Fill dpd, worst and status (accounts x days); an account's bills run in due-date order."""
    for a in prange(len(bill_start) - 1):
        b0, b1 = bill_start[a], bill_start[a + 1]
        for t in range(len(days)):
            T = days[t]
            now, seen, n_due, unpaid = 0, 0, 0, False
            for i in range(b0, b1):
                if due[i] > T:
                    break
                n_due += 1
                if settled[i] > T:
                    now = max(now, T - due[i])
                    unpaid = True
                else:  # past due at most until the day before it was settled
                    seen = max(seen, settled[i] - 1 - due[i])
            dpd[a, t] = now
            worst[a, t] = max(now, seen)
            if open_day[a] > T:
                status[a, t] = NOT_OPEN
            elif charge_off_day[a] <= T:
                status[a, t] = CHARGED_OFF
            elif close_day[a] <= T or (0 < loan_term[a] <= n_due and not unpaid):
                status[a, t] = CLOSED
            else:
                status[a, t] = ON_BOOK
