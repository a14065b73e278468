"""Data and definitions: what was reviewed, what was left out and why, and what every column means."""
from __future__ import annotations

import pandas as pd

from features.targets import TARGETS, LabelConfig
from review.evidence import VARIANT, VARIANT_COLUMN, Evidence, month_of
from review.pack import Section


def rows_by_month(ev: Evidence) -> pd.DataFrame:
    """Rows per month end and each target's rows and observed rate (complete outcomes only)."""
    rows = ev.rows
    month = month_of(rows)
    out = rows.groupby(month).size().rename("rows").to_frame()
    for target in ev.targets:
        y = rows[f"y_{target}"]
        scored = rows[f"p_{target}"].notna() & y.notna()
        out[f"{target} rows"] = scored.groupby(month).sum()
        out[f"{target} rate"] = y.where(scored).groupby(month).mean()
    if VARIANT_COLUMN in rows:
        y = rows[VARIANT_COLUMN].where(rows["p_default"].notna()) if "p_default" in rows else rows[VARIANT_COLUMN]
        out["default 90+/12m rows"] = y.notna().groupby(month).sum()
        out["default 90+/12m rate"] = y.groupby(month).mean()
    out.index = [pd.Timestamp(d).date() for d in out.index]
    return out.rename_axis("as of")


def definitions(labels: LabelConfig) -> pd.DataFrame:
    rows = [{"target": t.name, "outcome": t.rule, "window": f"{getattr(labels, t.window)} {t.window_unit}",
             "trained on": t.trained_on.text, "scored on": t.scored_on.text,
             "embargo (months)": t.embargo_months(labels)} for t in TARGETS]
    rows.append({"target": "default, 90+ DPD in 12 months", "outcome": "reaches 90 DPD within 12 months after T "
                 "(the Basel / IFRS 9 style definition; reviewed with the default model's PD)",
                 "window": f"{VARIANT.default_months} months", "trained on": "(not trained: a review definition)",
                 "scored on": TARGETS[0].scored_on.text, "embargo (months)": TARGETS[0].embargo_months(VARIANT)})
    return pd.DataFrame(rows)


def section(ev: Evidence) -> Section:
    s = Section("data", "Data and definitions")
    days = ev.as_of
    s.text(f"Predictions from {ev.source}: {len(ev.rows):,} rows, {ev.rows['account_id'].nunique():,} accounts, "
           f"{len(days)} month ends from {days[0].date()} to {days[-1].date()}. An outcome is read from the data "
           "only once its whole performance window has passed; a row whose window is unfinished is left out of "
           "that target and counted below. Rows outside a target's population carry no outcome for it.")
    s.table("Rows and observed rates by month end", rows_by_month(ev),
            {c: "{:.2%}" for c in rows_by_month(ev).columns if c.endswith("rate")})
    if len(ev.exclusions):
        table = ev.exclusions.pivot_table(index="reason", columns="as_of", values="rows", aggfunc="sum",
                                          fill_value=0)
        table.columns = [pd.Timestamp(c).date() for c in table.columns]
        s.table("Left out: outcomes whose window had not ended by the data's extraction date", table)
    s.table("Target definitions (one declaration: features/targets.py)", definitions(ev.labels))
    if ev.feature_info is not None:
        s.table(f"The model's {len(ev.feature_info)} features: source, description and fingerprint (the hash of "
                "the declaration and the code behind it)", ev.feature_info)
    s.numbers = {"rows": len(ev.rows), "accounts": int(ev.rows["account_id"].nunique()),
                 "as_of": [d.date() for d in days], "by_month": rows_by_month(ev).reset_index(),
                 "exclusions": ev.exclusions}
    return s
