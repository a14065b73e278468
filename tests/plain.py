"""Plain pandas versions of contract rules, written apart from features/ so tests can check against them."""
from __future__ import annotations

import pandas as pd


def settlement(tables) -> pd.DataFrame:
    """Bills with their settlement day: the first day the payments reach min_due, or the conversion day,
    whichever comes first; and the lag (settled - due, in days)."""
    bills, pay = tables.bills, tables.payments.copy()
    pay["cum"] = pay.groupby("bill_id")["amount"].cumsum()
    reach = pay.merge(bills[["bill_id", "min_due"]], on="bill_id")
    reach = reach[reach["cum"] >= reach["min_due"] - 1e-9].groupby("bill_id")["payment_date"].min()
    out = bills.set_index("bill_id")
    out["settled"] = reach
    out["settled"] = out[["settled", "converted_date"]].min(axis=1)
    out["lag"] = (out["settled"] - out["due_date"]).dt.days
    return out.reset_index()
