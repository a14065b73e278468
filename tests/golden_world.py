"""A small, fixed repayment world made in code, for the pinned feature values (tests/test_feature_golden.py).

Made here rather than by the simulator so that a change of the simulator never moves the pinned values:
only numpy's seeded generator and this file decide it. It has what the catalog reads: both products, grace
0-3, month-precision accounts, customers with several accounts, bills paid early, on time, 1-2 days late,
late within and beyond grace, 30+ days late, in parts, below the minimum or never, statements converted
into installments, limit changes and a macro table.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

BASE = np.datetime64("2023-01-01", "D")
AS_OF = ("2023-09-15", "2024-03-31", "2024-11-20")  # a mid-month day, a month end, late in the history
LAGS = (-9, -3, 0, 0, 0, 0, 1, 2, 3, 5, 12, 35, 70)  # settlement lag draws: early, on time, late, very late


def _date(days) -> np.ndarray:
    return (BASE + np.asarray(days, dtype=np.int64).astype("timedelta64[D]")).astype("datetime64[s]")


def _bill_payments(rng, bill: dict, day_of: int, out: list[dict]) -> None:
    """Payments of one bill: in full, the minimum only, below the minimum or nothing; some in two parts."""
    kind = rng.choice(["full", "full", "full", "min", "below", "none"], p=[0.4, 0.2, 0.15, 0.15, 0.05, 0.05])
    amount = {"full": bill["amount_due"], "min": bill["min_due"], "below": round(bill["min_due"] / 3, 2),
              "none": 0.0}[kind]
    if amount <= 0:
        return
    day = max(day_of, bill["statement_date"])
    parts = [amount] if rng.random() < 0.8 else [round(amount / 2, 2), round(amount - round(amount / 2, 2), 2)]
    for k, part in enumerate(parts):
        out.append({"account_id": bill["account_id"], "bill_id": bill["bill_id"],
                    "payment_date": day - (len(parts) - 1 - k) * 4, "amount": part})


def _account_bills(rng, acc: dict, next_id: list[int], bills: list[dict], payments: list[dict]) -> None:
    installment = acc["product"] == "installment"
    term = acc["loan_term"] or 18
    stmt = acc["open_date"] + int(rng.integers(0, 20))
    n = 0
    while stmt <= 700 and (not installment or n < term):
        amount = round(float(rng.choice([0.0, rng.uniform(20, 4000)], p=[0.04, 0.96])), 2)
        amount = 400.0 if installment else amount
        bill = {"account_id": acc["account_id"], "bill_id": next_id[0], "statement_date": stmt,
                "due_date": stmt + (10 if installment else 20), "amount_due": amount,
                "min_due": amount if installment else round(amount * 0.1, 2), "parent_bill_id": None,
                "converted_date": None}
        next_id[0] += int(rng.integers(1, 3))
        bills.append(bill)
        if not installment and amount > 500 and rng.random() < 0.06:  # made into three installments
            bill["converted_date"] = conv = stmt + int(rng.integers(1, 15))
            for j in range(3):
                part = {**bill, "bill_id": next_id[0], "statement_date": conv, "due_date": conv + 30 * (j + 1),
                        "amount_due": round(amount / 3, 2), "min_due": round(amount / 3, 2),
                        "parent_bill_id": bill["bill_id"], "converted_date": None}
                next_id[0] += 1
                bills.append(part)
                _bill_payments(rng, part, part["due_date"] + int(rng.choice(LAGS)), payments)
        else:
            _bill_payments(rng, bill, bill["due_date"] + int(rng.choice(LAGS)), payments)
        stmt += int(rng.choice([30, 31, 28]))
        n += 1


def golden_frames(n_accounts: int = 400, seed: int = 20240601) -> dict[str, pd.DataFrame]:
    """The world as contract tables (validate() them)."""
    rng = np.random.default_rng(seed)
    accounts, bills, payments, limits = [], [], [], []
    next_id = [1]
    for i in range(n_accounts):
        product = "installment" if rng.random() < 0.3 else "revolving"
        acc = {"account_id": 10 * i + 1, "customer_id": int(rng.integers(0, int(n_accounts * 0.7))),
               "product": product, "open_date": int(rng.integers(0, 300)), "grace_days": int(rng.integers(0, 4)),
               "date_precision": "month" if rng.random() < 0.1 else "day",
               "loan_term": int(rng.choice([6, 12, 24])) if product == "installment" and rng.random() < 0.8 else None,
               "income_band": float(rng.integers(1, 6)) if rng.random() < 0.9 else np.nan}
        accounts.append(acc)
        _account_bills(rng, acc, next_id, bills, payments)
        if product == "revolving":
            limits.append({"account_id": acc["account_id"], "effective_date": acc["open_date"],
                           "credit_limit": float(rng.choice([1000, 2000, 5000]))})
            if rng.random() < 0.5:
                limits.append({"account_id": acc["account_id"],
                               "effective_date": acc["open_date"] + int(rng.integers(60, 600)),
                               "credit_limit": float(rng.choice([0, 1500, 3000, 8000]))})
    months = np.arange(24)
    month_day = (BASE.astype("datetime64[M]") + months).astype("datetime64[D]") - BASE
    macro = pd.DataFrame({"month": _date(month_day.astype(np.int64)),
                          "published_date": _date(month_day.astype(np.int64) + 45),
                          "stress_index": np.round(rng.normal(50, 8, len(months)), 3),
                          "unemployment_rate": np.round(rng.normal(5, 0.4, len(months)), 3)})
    frames = {"accounts": pd.DataFrame(accounts), "bills": pd.DataFrame(bills), "payments": pd.DataFrame(payments),
              "limits": pd.DataFrame(limits), "macro": macro}
    for name in ("accounts", "bills", "payments", "limits"):
        frame = frames[name]
        for column in [c for c in frame.columns if c.endswith("_date")]:
            frame[column] = _date(frame[column].fillna(-1).to_numpy(np.int64))
            frame.loc[frames[name][column] == _date([-1])[0], column] = np.datetime64("NaT")
    frames["bills"]["parent_bill_id"] = frames["bills"]["parent_bill_id"].astype("Int64")
    frames["accounts"]["loan_term"] = frames["accounts"]["loan_term"].astype("Int64")
    return frames


def world_digest(frames: dict[str, pd.DataFrame]) -> str:
    """A short SHA-256 of the world's tables as text: tells a changed world from changed features."""
    text = "".join(frames[name].to_csv(index=False) for name in sorted(frames))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
