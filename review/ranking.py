"""Discrimination: does the model still rank bads above goods, overall, month by month and in every segment?

Every interval is clustered by account (an account appears at many month ends): DeLong's with Obuchowski's
cluster-robust variance, and the account-level bootstrap (a fixed number of resamples). The decline test is the
ECB's one-sided test of the current AUC against the development one (the bundle's out-of-time AUC).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from review.evidence import VARIANT_COLUMN, Evidence, groups, month_of
from review.figures import interval_by_month_figure, ks_figure, roc_cap_figure
from review.pack import Section
from review.thresholds import Thresholds
from validation.discrimination import auc_decline_test, delong, gains_table, ks_ranked, tie_ranks
from validation.metrics import MetricError, auc, bootstrap_auc_ci

SEGMENTS = {"product": "product", "tenure_band": "months on book", "grace_days": "grace days",
            "dpd_bucket": "days past due at T"}


def auc_row(y: np.ndarray, ranks: np.ndarray, groups: np.ndarray, level: float = 0.95) -> dict:
    """Rows, bads, AUC with its clustered DeLong interval, Gini and KS, from the scores' pooled ranks
    (`tie_ranks`: no sort per subset); NaN where one class is missing."""
    out = {"rows": len(y), "bads": int(y.sum()), "auc": np.nan, "lo": np.nan, "hi": np.nan, "gini": np.nan,
           "ks": np.nan}
    if not 0 < y.sum() < len(y):
        return out
    out["ks"] = ks_ranked(y, ranks)
    try:
        d = delong(y, ranks, groups)
    except MetricError:  # bads (or goods) from one account only: an AUC, but no interval says anything
        out["auc"] = auc(y, ranks)
        out["gini"] = 2 * out["auc"] - 1
        return out
    z = float(norm.ppf(0.5 + level / 2))
    out.update(auc=d["auc"], gini=2 * d["auc"] - 1, lo=max(0.0, d["auc"] - z * d["se"]),
               hi=min(1.0, d["auc"] + z * d["se"]))
    return out


def by_month(rows: pd.DataFrame, y: str) -> pd.DataFrame:
    return _by(rows, y, month_of(rows), "as_of")


def by_segment(rows: pd.DataFrame, y: str) -> pd.DataFrame:
    parts = [_by(rows, y, rows[column], "value").assign(segment=name)
             for column, name in SEGMENTS.items()]
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].astype(str)
    return out[["segment", *[c for c in out.columns if c != "segment"]]]


def _by(rows: pd.DataFrame, y: str, keys: pd.Series, name: str) -> pd.DataFrame:
    """auc_row of each group of `keys`, on arrays (no per-group copy of the frame)."""
    yy, rr, gg = rows[y].to_numpy(), rows["rank"].to_numpy(), rows["account_id"].to_numpy()
    return pd.DataFrame([{name: value, **auc_row(yy[at], rr[at], gg[at])} for value, at in groups(keys)])


def section(ev: Evidence, thresholds: Thresholds, *, n_boot: int = 100, seed: int = 0) -> Section:
    s = Section("discrimination", "Discrimination")
    s.text(f"AUC intervals are 95 %, clustered by account: DeLong's variance with Obuchowski's cluster correction, "
           f"and an account-level bootstrap of {n_boot} resamples (seed {seed}). KS is computed on tie blocks, so "
           "tied predictions never inflate it.")
    pooled = []
    for target in ev.targets:
        rows = ev.scored(target)
        y, g = rows[f"y_{target}"].to_numpy(), rows["account_id"].to_numpy()
        if len(rows) == 0 or not 0 < y.sum() < len(y):
            s.missing(f"{target}: no rows with both outcomes in the window")
            continue
        rows = rows.assign(rank=tie_ranks(rows[f"p_{target}"].to_numpy()))  # one sort per target, pooled
        r = rows["rank"].to_numpy()
        row = {"target": target, **auc_row(y, r, g)}
        try:
            row["boot_lo"], row["boot_hi"] = bootstrap_auc_ci(y, r, g, n_boot=n_boot, seed=seed)
        except MetricError as exc:
            row["boot_lo"] = row["boot_hi"] = np.nan
            s.text(f"*{target}: no bootstrap interval ({exc}).*")
        pooled.append(row)
        _target_part(s, ev, target, rows, thresholds)
    s.numbers["pooled"] = pd.DataFrame(pooled)
    if pooled:
        s.blocks.insert(1, _pooled_block(pd.DataFrame(pooled)))
    return s


def _pooled_block(table: pd.DataFrame):
    return lambda rep: rep.add_table("The review window, pooled (interval: DeLong clustered; boot: account "
                                     "bootstrap)", table, {"auc": ".4f", "lo": ".4f", "hi": ".4f", "gini": ".4f",
                                                          "ks": ".4f", "boot_lo": ".4f", "boot_hi": ".4f"})


def _target_part(s: Section, ev: Evidence, target: str, rows: pd.DataFrame, thresholds: Thresholds) -> None:
    y_col, p_col = f"y_{target}", f"p_{target}"
    y, p, g = rows[y_col].to_numpy(), rows[p_col].to_numpy(), rows["account_id"].to_numpy()
    s.text(f"### {target}")
    ranks = rows["rank"].to_numpy()
    s.figure(f"{target}: ROC and CAP over the window", roc_cap_figure(y, p, target, ranks))
    s.figure(f"{target}: KS", ks_figure(y, p, target, ranks))
    monthly = by_month(rows, y_col)
    dev = ev.development.get(target, {}).get("auc")
    dev_rows = ev.development.get(target, {}).get("n")
    s.figure(f"{target}: AUC by month", interval_by_month_figure(monthly, "auc", "AUC", dev))
    s.table(f"{target}: AUC by month", monthly, _fmt())
    _decline(s, target, (dev, dev_rows), (y, rows["rank"].to_numpy(), g), thresholds)
    segments = by_segment(rows, y_col)
    s.table(f"{target}: by segment", segments, _fmt())
    s.table(f"{target}: gains by decile of the prediction, riskiest first", gains_table(y, ranks))
    s.numbers[target] = {"by_month": monthly, "segments": segments}
    if target == "default":
        variant = rows[rows[VARIANT_COLUMN].notna()]
        if len(variant) and 0 < variant[VARIANT_COLUMN].sum() < len(variant):
            row = auc_row(variant[VARIANT_COLUMN].to_numpy(), variant["rank"].to_numpy(),
                          variant["account_id"].to_numpy())
            s.table("default: the same PD against the 90+ DPD in 12 months definition", pd.DataFrame([row]), _fmt())
            s.numbers["default_90_12m"] = row
        else:
            s.missing("the 90+ DPD in 12 months definition: no complete 12-month window with both outcomes")


def _decline(s: Section, target: str, development: tuple, rows: tuple, thresholds: Thresholds) -> None:
    """The ECB's one-sided test of the window's AUC against the development one (the bundle's out-of-time)."""
    dev, dev_rows = development
    name = f"{target}: AUC not declined since development (ECB one-sided, {thresholds.auc_decline_level:.0%})"
    if dev is None:
        s.check(name, None, "p ≥ 0.05", None, note="no development AUC to hold it against (in a training run the "
                "out-of-time slice is the development sample)")
        return
    test = auc_decline_test(dev, *rows, level=thresholds.auc_decline_level)
    s.numbers.setdefault("decline", {})[target] = test
    measured = f" on {int(dev_rows):,} out-of-time rows" if dev_rows else ""
    s.check(name, test["p_value"], f"p ≥ {1 - thresholds.auc_decline_level:.2g}", not test["rejected"],
            finding=True, note=f"AUC {test['auc']:.4f} now, {dev:.4f} at development{measured}")


def _fmt() -> dict:
    return {"auc": ".4f", "lo": ".4f", "hi": ".4f", "gini": ".4f", "ks": ".4f"}
