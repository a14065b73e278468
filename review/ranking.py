"""Discrimination: does the model still rank bads above goods, overall, month by month and in every segment?

Every interval is clustered by account (an account appears at many month ends): DeLong's with Obuchowski's
cluster-robust variance, and the account-level bootstrap (a fixed number of resamples). The decline test is the
ECB's one-sided test of the current AUC against the development one (the bundle's out-of-time AUC).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from review.evidence import VARIANT_COLUMN, Evidence, month_of, partition
from review.figures import interval_by_month_figure, ks_figure, roc_cap_figure
from review.pack import Section
from review.thresholds import Thresholds
from validation.discrimination import decline_test, gains_table, tie_ranks
from validation.grouped_auc import Ranked, grouped_auc
from validation.metrics import MetricError, bootstrap_auc_ci

SEGMENTS = {"product": "product", "tenure_band": "months on book", "grace_days": "grace days",
            "dpd_bucket": "days past due at T"}


def auc_table(ranked: Ranked, keys, name: str, level: float = 0.95) -> pd.DataFrame:
    """Rows, bads, AUC with its clustered DeLong interval (and se), Gini and KS of every group of `keys`
    present, in two compiled passes over the pooled rows (`grouped_auc`); NaN where one class is missing, and
    no interval where bads (or goods) come from one account only."""
    codes, values = partition(keys)
    stats = grouped_auc(ranked, codes, len(values))
    z = float(norm.ppf(0.5 + level / 2))
    out = []
    for k, value in enumerate(values):
        if stats["rows"][k] == 0:
            continue
        row = {name: value, "rows": int(stats["rows"][k]), "bads": int(stats["bads"][k]), "auc": np.nan,
               "lo": np.nan, "hi": np.nan, "gini": np.nan, "ks": np.nan, "se": np.nan}
        if 0 < row["bads"] < row["rows"]:
            auc, se = float(stats["auc"][k]), float(np.sqrt(stats["variance"][k]))
            row.update(auc=auc, gini=2 * auc - 1, ks=float(stats["ks"][k]), se=se)
            if np.isfinite(se):  # bads (or goods) of one account: an AUC, but no interval says anything
                row.update(lo=max(0.0, auc - z * se), hi=min(1.0, auc + z * se))
        out.append(row)
    return pd.DataFrame(out)


def by_month(rows: pd.DataFrame, ranked: Ranked) -> pd.DataFrame:
    return auc_table(ranked, month_of(rows), "as_of").drop(columns="se")


def by_segment(rows: pd.DataFrame, ranked: Ranked) -> pd.DataFrame:
    parts = [auc_table(ranked, rows[column], "value").drop(columns="se").assign(segment=name)
             for column, name in SEGMENTS.items()]
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].astype(str)
    return out[["segment", *[c for c in out.columns if c != "segment"]]]


def _whole(ranked: Ranked, rows: int, at: np.ndarray | None = None) -> dict:
    """auc_table's one row for all the rows (or those where `at`)."""
    keys = np.zeros(rows, np.int64) if at is None else np.where(at, 0, -1)
    return auc_table(ranked, keys, "all").iloc[0].drop("all").to_dict()


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
        rows = rows.assign(rank=tie_ranks(rows[f"p_{target}"].to_numpy()),  # one sort per target, pooled
                           account=pd.factorize(g)[0])
        r = rows["rank"].to_numpy()
        ranked = Ranked.of(y, r, rows["account"].to_numpy())
        row = {"target": target, **_whole(ranked, len(rows))}
        try:
            row["boot_lo"], row["boot_hi"] = bootstrap_auc_ci(y, r, rows["account"].to_numpy(), n_boot=n_boot,
                                                              seed=seed)
        except MetricError as exc:
            row["boot_lo"] = row["boot_hi"] = np.nan
            s.text(f"*{target}: no bootstrap interval ({exc}).*")
        pooled.append(row)
        _target_part(s, ev, target, (rows, ranked), (row["auc"], row.pop("se")), thresholds)
    s.numbers["pooled"] = pd.DataFrame(pooled)
    if pooled:
        s.blocks.insert(1, _pooled_block(pd.DataFrame(pooled)))
    return s


def _pooled_block(table: pd.DataFrame):
    return lambda rep: rep.add_table("The review window, pooled (interval: DeLong clustered; boot: account "
                                     "bootstrap)", table, {"auc": ".4f", "lo": ".4f", "hi": ".4f", "gini": ".4f",
                                                          "ks": ".4f", "boot_lo": ".4f", "boot_hi": ".4f"})


def _target_part(s: Section, ev: Evidence, target: str, scored: tuple[pd.DataFrame, Ranked],
                 pooled: tuple[float, float], thresholds: Thresholds) -> None:
    rows, ranked = scored
    y_col, p_col = f"y_{target}", f"p_{target}"
    y, p = rows[y_col].to_numpy(), rows[p_col].to_numpy()
    s.text(f"### {target}")
    ranks = rows["rank"].to_numpy()
    s.figure(f"{target}: ROC and CAP over the window", roc_cap_figure(y, p, target, ranks))
    s.figure(f"{target}: KS", ks_figure(y, p, target, ranks))
    monthly = by_month(rows, ranked)
    dev = ev.development.get(target, {}).get("auc")
    dev_rows = ev.development.get(target, {}).get("n")
    s.figure(f"{target}: AUC by month", interval_by_month_figure(monthly, "auc", "AUC", dev))
    s.table(f"{target}: AUC by month", monthly, _fmt())
    _decline(s, target, (dev, dev_rows), pooled, thresholds)
    segments = by_segment(rows, ranked)
    s.table(f"{target}: by segment", segments, _fmt())
    s.table(f"{target}: gains by decile of the prediction, riskiest first", gains_table(y, ranks))
    s.numbers[target] = {"by_month": monthly, "segments": segments}
    if target == "default":
        known = rows[VARIANT_COLUMN].notna().to_numpy()
        v = rows[VARIANT_COLUMN].to_numpy()
        if known.any() and 0 < v[known].sum() < known.sum():
            variant = Ranked.of(np.where(known, v, 0.0), ranks, rows["account"].to_numpy())
            row = _whole(variant, len(rows), known)
            del row["se"]
            s.table("default: the same PD against the 90+ DPD in 12 months definition", pd.DataFrame([row]), _fmt())
            s.numbers["default_90_12m"] = row
        else:
            s.missing("the 90+ DPD in 12 months definition: no complete 12-month window with both outcomes")


def _decline(s: Section, target: str, development: tuple, current: tuple[float, float],
             thresholds: Thresholds) -> None:
    """The ECB's one-sided test of the window's AUC against the development one (the bundle's out-of-time)."""
    dev, dev_rows = development
    name = f"{target}: AUC not declined since development (ECB one-sided, {thresholds.auc_decline_level:.0%})"
    if dev is None:
        s.check(name, None, "p ≥ 0.05", None, note="no development AUC to hold it against (in a training run the "
                "out-of-time slice is the development sample)")
        return
    if not np.isfinite(current[1]) or current[1] == 0:
        s.check(name, None, "p ≥ 0.05", None, note="the window's AUC has no standard error (bads or goods from "
                "one account only, or a perfect ranking): nothing to test")
        return
    test = decline_test(dev, *current, level=thresholds.auc_decline_level)
    s.numbers.setdefault("decline", {})[target] = test
    measured = f" on {int(dev_rows):,} out-of-time rows" if dev_rows else ""
    s.check(name, test["p_value"], f"p ≥ {1 - thresholds.auc_decline_level:.2g}", not test["rejected"],
            finding=True, note=f"AUC {test['auc']:.4f} now, {dev:.4f} at development{measured}")


def _fmt() -> dict:
    return {"auc": ".4f", "lo": ".4f", "hi": ".4f", "gini": ".4f", "ks": ".4f"}
