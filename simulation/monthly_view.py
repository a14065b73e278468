"""A world seen as a bureau sees it: per account and month a status code, the statement, the paid amount and
the limit, and the outcome after a snapshot as a labels file.

Why: most risk teams have monthly files, not day-exact events. This view of a synthetic world is such a file,
with its ground truth kept, so the monthly path (adapter, features, training) can be measured against the
day-precise one on the same accounts. Codes are the adapter's defaults (features.adapters.DEFAULT_CODES):
months past due 1..6 (6: six or more) at the month end, and for a month with nothing past due C (the
month's statement paid in full within it), R (exactly its minimum paid), N (no statement due in the month)
or 0; L and W in the month the account closed or was charged off, after which it is not reported.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.builders import Prepared, to_days
from features.days import calendar_months, month_end_days
from features.kernels import NONE
from features.labels import build_labels, window_end
from features.monthly_file import new_folder
from features.targets import LabelConfig

CAP = 6  # months past due reported as "6 or more"


def monthly_view(prep: Prepared, last_month: pd.Timestamp, months: int) -> pd.DataFrame:
    """Every account reported in the `months` months ending with `last_month`'s: account_id, month (first
    day), status, bill_amount, paid_amount, credit_limit, customer_id, product."""
    last = int(calendar_months(to_days(np.array([np.datetime64(pd.Timestamp(last_month), "D")])))[0])
    frames = [_month(prep, m) for m in range(last - months + 1, last + 1)]
    view = pd.concat(frames, ignore_index=True).sort_values(["account_id", "month"], ignore_index=True)
    return view


def _month(prep: Prepared, month: int) -> pd.DataFrame:
    """One month's rows: the accounts open at some day of it that had not left the book before it."""
    start, end = (int(d) for d in month_end_days(np.array([month - 1, month])) + np.array([1, 0]))
    on = (prep.open_day <= end) & (prep.exit_day >= start)
    n = len(prep.account_id)
    bill_account = np.repeat(np.arange(n), np.diff(prep.bill_start))
    pay_account = np.repeat(np.arange(n), np.diff(prep.payment_start))
    live = prep.converted_day == NONE  # a statement made into installments is owed through them
    due_here = live & (prep.due_day >= start) & (prep.due_day <= end)
    statement = np.bincount(bill_account[due_here], prep.amount_due[due_here], n)
    minimum = np.bincount(bill_account[due_here], prep.min_due[due_here], n)
    paid_here = (prep.payment_day >= start) & (prep.payment_day <= end)
    paid = np.bincount(pay_account[paid_here], prep.payment_amount[paid_here], n)
    unsettled = live & (prep.due_day <= end) & (prep.settled_day > end)
    oldest = np.full(n, NONE)
    np.minimum.at(oldest, bill_account[unsettled], prep.due_day[unsettled])
    late = np.where(oldest < NONE, month - calendar_months(np.where(oldest < NONE, oldest, 0)) + 1, 0)
    status = np.where(late > 0, np.minimum(late, CAP).astype(str), "0").astype(object)
    has_bill = np.bincount(bill_account[due_here], minlength=n) > 0
    current = late == 0
    status[current & ~has_bill] = "N"
    status[current & has_bill & (paid >= statement - 1e-9) & (statement > 0)] = "C"
    status[current & has_bill & (np.abs(paid - minimum) < 5e-3) & (paid < statement - 1e-9)] = "R"
    status[(prep.close_day >= start) & (prep.close_day <= end)] = "L"
    status[(prep.charge_off_day >= start) & (prep.charge_off_day <= end)] = "W"
    return pd.DataFrame({
        "account_id": prep.account_id[on], "month": np.datetime64(int(month), "M").astype("datetime64[s]"),
        "status": status[on], "bill_amount": statement[on], "paid_amount": paid[on],
        "credit_limit": _limit_at(prep, end)[on], "customer_id": prep.customer_id[on],
        "product": np.where(prep.is_installment, "installment", "revolving")[on],
    })


def _limit_at(prep: Prepared, day: int) -> np.ndarray:
    """Each account's credit limit in force at the end of `day` (NaN before its first)."""
    n = len(prep.account_id)
    account = np.repeat(np.arange(n), np.diff(prep.limit_start))
    known = prep.limit_effective_day <= day
    last = np.full(n, -1)
    np.maximum.at(last, account[known], np.flatnonzero(known))  # rows sorted by date within an account
    return np.where(last >= 0, prep.limit_value[np.maximum(last, 0)], np.nan)


def read_back(view: pd.DataFrame, adapted, last_month: pd.Timestamp, months: int) -> dict:
    """The adapter's round trip: `view` adapted (the Tables `adapted`) and viewed again. Shares of account-months
    whose status reads back equal; of those whose reported months reach back to the oldest unpaid bill (the
    rest hold arrears older than the first report, which no file can show), and how many read back higher."""
    again = monthly_view(Prepared(adapted), last_month, months)
    both = view.merge(again, on=["account_id", "month"], suffixes=("", "_again"), how="left")
    first = both.groupby("account_id")["month"].transform("min")
    reported = (both["month"].dt.year - first.dt.year) * 12 + both["month"].dt.month - first.dt.month + 1
    want, got = (months_past_due(both[c]) for c in ("status", "status_again"))
    explained = want <= reported.to_numpy()
    equal = (both["status"] == both["status_again"]).to_numpy()
    return {"equal_share": float(equal.mean()), "explained": int(explained.sum()),
            "explained_equal_share": float((got[explained] == want[explained]).mean()), "more": int((got > want).sum())}


def months_past_due(status: pd.Series) -> np.ndarray:
    """A status column's months past due (0 for any code that is not a number; missing rows 0)."""
    text = status.astype("string")
    return pd.to_numeric(text.where(text.str.isdigit().fillna(False)), errors="coerce").fillna(0).to_numpy(int)


def snapshot_labels(prep: Prepared, snapshot: pd.Timestamp) -> pd.DataFrame:
    """The `default` outcome after the snapshot (the targets' one definition) of every account labelled
    there, in train.py --labels' form: account_id, as_of, target, label."""
    labels = build_labels(prep, [pd.Timestamp(snapshot)])
    done = labels["default"].notna() & labels["complete_default"]
    out = labels.loc[done, ["account_id", "as_of"]].assign(target="default", label=labels.loc[done, "default"])
    return out.reset_index(drop=True)


def latest_snapshot(prep: Prepared, labels: LabelConfig | None = None) -> pd.Timestamp:
    """The latest month end whose default window (the longest of the targets) has ended by the extraction."""
    labels = labels or LabelConfig()
    last = int(to_days(np.array([np.datetime64(prep.extraction.date(), "D")]))[0])
    ends = month_end_days(np.arange(int(calendar_months(np.array([prep.first_day]))[0]),
                                    int(calendar_months(np.array([last]))[0]) + 1))
    done = ends[window_end(ends, labels.default_months) <= last]
    if not len(done):
        raise ValueError("no month end of the data has a complete default window: the world is too short")
    return pd.Timestamp(np.datetime64(int(done[-1]), "D"))


def write_view(prep: Prepared, out: Path, months: int, snapshot: pd.Timestamp | None = None) -> tuple[int, int]:
    """monthly.parquet (the view's `months` months ending at the snapshot's) and labels.parquet (the default
    after it) in a new folder `out`, written beside it and renamed into place: (view rows, labels)."""
    snapshot = latest_snapshot(prep) if snapshot is None else pd.Timestamp(snapshot)
    view, labels = monthly_view(prep, snapshot, months), snapshot_labels(prep, snapshot)
    with new_folder(out) as tmp:
        view.to_parquet(tmp / "monthly.parquet", index=False)
        labels.to_parquet(tmp / "labels.parquet", index=False)
    return len(view), len(labels)
