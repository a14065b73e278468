"""Benchmark: the model beside the benchmark scorecard, the current champion and (on synthetic data) the
Bayes-optimal oracle, all on the same rows, with paired differences clustered by account."""
from __future__ import annotations

import numpy as np
import pandas as pd

from review.evidence import Evidence
from review.pack import Section, floats
from review.thresholds import Thresholds
from validation.discrimination import delong, delong_paired

REPLICATION_TOLERANCE = 1e-9  # |logged - replayed| probability


def section(ev: Evidence, thresholds: Thresholds) -> Section:
    s = Section("benchmark", "Benchmark")
    sample = ev.features
    if sample is None or not len(sample):
        s.missing("benchmarks: no replayed sample of the window's rows")
        return s
    s.text(f"On a seeded sample of {sample['account_id'].nunique():,} accounts ({len(sample):,} rows of the window), "
           "the model's features are rebuilt from the data and every benchmark scores the same rows. Differences "
           "are paired (DeLong's covariance, clustered by account): an interval above 0 says the model ranks "
           "better beyond sampling noise.")
    _replication(s, ev, sample)
    rows, gaps = [], []
    for target in ev.targets:
        rows_t, gaps_t = _compare(sample, target)
        rows += rows_t
        gaps += gaps_t
    if rows:
        s.table("AUC on the same rows (interval: DeLong, clustered by account)", pd.DataFrame(rows),
                floats(pd.DataFrame(rows), ".4f"))
    if gaps:
        table = pd.DataFrame(gaps)
        s.table("This model minus each benchmark (paired, 95 %)", table, {**floats(table, "+.4f"), "p_value": ".3g"})
        s.numbers["differences"] = table
        for r in table[table["against"] == "benchmark scorecard"].itertuples():
            s.check(f"{r.target}: ranks at least as well as the benchmark scorecard", r.hi, "upper bound ≥ 0",
                    bool(r.hi >= 0), note=f"difference {r.difference:+.4f} [{r.lo:+.4f}, {r.hi:+.4f}]")
    missing = [n for n in ("scorecard", "champion", "oracle") if not any(c.startswith(n + "_") for c in sample)]
    for name in missing:
        s.missing({"scorecard": "the benchmark scorecard: the bundle carries none",
                   "champion": "the champion: the reviewed model is the champion, or none is registered",
                   "oracle": "the Bayes-optimal oracle: the data have no synthetic truth"}[name])
    s.numbers["auc"] = pd.DataFrame(rows)
    return s


BENCHMARKS = (("scorecard", "benchmark scorecard"), ("champion", "champion"), ("oracle", "Bayes-optimal oracle"))


def _compare(sample: pd.DataFrame, target: str) -> tuple[list[dict], list[dict]]:
    """AUC of the model and of each benchmark the sample carries, and the paired differences, on the rows
    where both have a prediction and the outcome is known."""
    y = sample[f"y_{target}"].to_numpy()
    mine = sample[f"p_{target}"].to_numpy()
    g = sample["account_id"].to_numpy()
    base = ~np.isnan(y) & ~np.isnan(mine)
    if not 0 < y[base].sum() < base.sum():
        return [], []
    rows = [{"target": target, "model": "this model", **_auc(y[base], mine[base], g[base])}]
    gaps = []
    for prefix, name in BENCHMARKS:
        if f"{prefix}_{target}" not in sample:
            continue
        theirs = sample[f"{prefix}_{target}"].to_numpy(np.float64)
        ok = base & ~np.isnan(theirs)
        if not 0 < y[ok].sum() < ok.sum():
            continue
        rows.append({"target": target, "model": name, **_auc(y[ok], theirs[ok], g[ok])})
        d = delong_paired(y[ok], mine[ok], theirs[ok], g[ok])
        gaps.append({"target": target, "against": name, "rows": int(ok.sum()), "difference": d["diff"],
                     "lo": d["lo"], "hi": d["hi"], "p_value": d["p_value"]})
    return rows, gaps


def _auc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict:
    d = delong(y, p, groups)
    return {"rows": len(y), "auc": d["auc"], "lo": d["auc"] - 1.959964 * d["se"], "hi": d["auc"] + 1.959964 * d["se"]}


def _replication(s: Section, ev: Evidence, sample: pd.DataFrame) -> None:
    """The logged probabilities against the ones the model gives on features rebuilt now."""
    worst = {}
    for target in ev.targets:
        logged, replayed = sample[f"p_{target}"].to_numpy(), sample.get(f"replayed_{target}")
        if replayed is None:
            continue
        both = ~np.isnan(logged) & ~np.isnan(replayed.to_numpy())
        worst[target] = float(np.abs(logged[both] - replayed.to_numpy()[both]).max(initial=0.0))
    if not worst:
        return
    top = max(worst.values())
    s.check("replication: the logged probabilities are what the model gives on the rebuilt features", top,
            f"≤ {REPLICATION_TOLERANCE:g}", top <= REPLICATION_TOLERANCE, finding=True,
            note="largest difference over " + ", ".join(f"{t} {v:.2g}" for t, v in worst.items()))
    s.numbers["replication"] = worst
