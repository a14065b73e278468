"""Portfolio: how the book itself behaved over the window, whatever the model said.

Vintage curves (the share of each opening quarter ever 30+ DPD by months on book) and the month-to-month
roll-rate matrix between DPD buckets, from month-end snapshots of every account (features.dpd): only what
was known at each month end. The snapshots run over the window's month ends and the one after it, so a
cohort's curve starts only if it opened within the window, and every late account's next month is known.
"""
from __future__ import annotations

import pandas as pd

from review.evidence import Evidence
from review.pack import Section, floats
from validation.portfolio import roll_rate_table, roll_rates, vintage_curves, vintage_figure


def section(ev: Evidence) -> Section:
    s = Section("portfolio", "Portfolio")
    frame = ev.portfolio
    if frame is None or not len(frame):
        s.missing("vintage curves and roll rates: no month-end snapshots of the book")
        return s
    days = sorted(frame["as_of"].unique())
    s.text(f"Month-end snapshots of every account opened by then: {len(days)} month ends from "
           f"{pd.Timestamp(days[0]).date()} to {pd.Timestamp(days[-1]).date()}, {frame['account_id'].nunique():,} "
           "accounts. 'Ever 30+' counts an episode that cured before the month end too.")
    curves = vintage_curves(frame)
    if len(curves):
        s.figure("Vintage curves: share of each opening quarter ever 30+ DPD, by months on book",
                 vintage_figure(curves))
        wide = curves.pivot(index="cohort", columns="months_on_book", values="share")
        wide.columns = [f"{m} mob" for m in wide.columns]
        s.table("Vintage curves (share ever 30+ DPD)", wide, floats(wide, "{:.2%}"))
    else:
        s.missing("vintage curves: no cohort opened within the snapshots' months")
    if len(days) >= 2:
        counts, shares = roll_rates(frame)
        s.table("Roll rates: of the accounts in a bucket at one month end, where they are at the next (summed "
                "over every pair of consecutive month ends)", roll_rate_table(counts, shares))
        s.numbers["roll_rates"] = shares.reset_index()
    s.numbers["vintages"] = curves
    return s
