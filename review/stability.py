"""Stability and concentration: has the book moved away from what the model was developed on?

Score PSI and every feature's CSI against the bundle's training reference, over the window (the month ends'
histograms added up: each scoring run records them on the reference's bins) and month by month; the grade
migration matrix between the window's first and last month ends with the ECB's stability tests; the
Herfindahl index of the grades.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import default_catalog
from review.evidence import Evidence, month_of
from review.figures import histogram_figure
from review.pack import Section, floats
from review.thresholds import Thresholds
from validation.metrics import psi_from_counts
from validation.supervisory import herfindahl, migration_matrix, migration_stability


def drift_table(ev: Evidence) -> pd.DataFrame:
    """One row per feature (the score first): PSI / CSI over the window and in each month, and whether the
    value is judged (a one-value-per-date or run-day feature is reported, never judged)."""
    if not ev.drift_counts or not ev.reference:
        return pd.DataFrame()
    months = sorted(ev.drift_counts)
    names = ["score", *sorted(ev.reference.get("features", {}))]  # "_ranges": the economy's, apart
    unjudged = {f.name for f in default_catalog() if f.one_value_per_date or f.run_day}
    rows = []
    for name in names:
        ref = ev.reference["score"] if name == "score" else ev.reference["features"][name]
        per_month = [ev.drift_counts[m].get(name) for m in months]
        if any(c is None for c in per_month):
            continue
        row = {"name": name, "judged": name not in unjudged,
               "window": _psi(ref, np.sum(np.asarray(per_month, dtype=np.float64), axis=0))}
        row.update({str(pd.Timestamp(m).date()): _psi(ref, c) for m, c in zip(months, per_month, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def _psi(reference: dict, counts) -> float:
    """PSI of counts on the reference's bins; NaN for a month without a value."""
    counts = np.asarray(counts, dtype=np.float64)
    return psi_from_counts(reference, counts) if counts.sum() > 0 else np.nan


def range_table(ev: Evidence) -> pd.DataFrame:
    """The economy's value each night against the range it took in training, as the nightly runs judged it."""
    rows = []
    for day in sorted(ev.drift_counts):
        for name, e in ev.drift_counts[day].get("_ranges", {}).items():
            lo, hi = e["training_range"]
            rows.append({"as_of": pd.Timestamp(day).date(), "feature": name, "value": e["value"], "training min": lo,
                         "training max": hi, "level": e["level"]})
    return pd.DataFrame(rows)


def section(ev: Evidence, thresholds: Thresholds) -> Section:
    s = Section("stability", "Stability and concentration")
    table = drift_table(ev)
    if table.empty:
        s.missing("PSI and CSI: no drift histograms recorded for the window")
    else:
        _drift(s, table, thresholds)
    ranges = range_table(ev)
    if len(ranges):
        s.table("The economy against its training range (one value per date: its CSI says nothing; alert beyond the "
                "range by more than a quarter of its width)", ranges, floats(ranges, ".4g"))
        for name, g in ranges.groupby("feature"):
            alerts = g[g["level"] == "alert"]
            s.check(f"{name} within its training range", f"{len(alerts)} of {len(g)} month ends beyond it",
                    "no alert", alerts.empty, finding=True,
                    note="" if alerts.empty else f"from {alerts['as_of'].min()}: scored as the range's edge")
    if "default" in ev.targets:
        _migration(s, ev, thresholds)
        _concentration(s, ev)
    else:
        s.missing("grade migration and concentration: the model has no default PD")
    return s


def _drift(s: Section, table: pd.DataFrame, thresholds: Thresholds) -> None:
    score = table[table["name"] == "score"]
    feats = table[table["name"] != "score"].sort_values("window", ascending=False)
    s.text(f"PSI / CSI against the training reference on its own bins (an empty bin counts as a share of 1e-4, so "
           f"no value is infinite). Warning above {thresholds.psi_warning:g}, alert above {thresholds.psi_alert:g}; "
           "a feature with one value per date (the economy, the calendar) or set by the run day is shown, not "
           "judged.")
    s.table("Score PSI, over the window and by month", score.drop(columns=["judged"]), floats(score, ".4f"))
    s.table(f"Feature CSI, highest first ({len(feats)} features)", feats, floats(feats, ".4f"))
    s.numbers["psi"] = table
    for r in table.itertuples():
        if r.judged:
            label = "score PSI" if r.name == "score" else f"CSI of {r.name}"
            judged = bool(r.window <= thresholds.psi_alert) if np.isfinite(r.window) else None
            s.check(f"{label} over the window", r.window, f"≤ {thresholds.psi_alert:g}", judged, finding=True)


def _migration(s: Section, ev: Evidence, thresholds: Thresholds) -> None:
    rows = ev.rows[["account_id", "as_of", "p_default"]][ev.rows["p_default"].notna().to_numpy()]
    rows = rows.assign(as_of=month_of(rows)).drop_duplicates(["account_id", "as_of"], keep="last")
    days = sorted(rows["as_of"].unique())
    if len(days) < 2:
        s.missing("grade migration: the window holds one month end")
        return
    first, last = (rows[rows["as_of"] == d].set_index("account_id")["p_default"] for d in (days[0], days[-1]))
    both = first.index.intersection(last.index)
    k = ev.scale.n_grades
    counts, shares = migration_matrix(ev.scale.grade(first[both].to_numpy()) - 1,
                                      ev.scale.grade(last[both].to_numpy()) - 1, k)
    test = migration_stability(counts, level=thresholds.migration_level)
    labels = [str(g) for g in ev.scale.grades]
    a, b = pd.Timestamp(days[0]).date(), pd.Timestamp(days[-1]).date()
    frame = pd.DataFrame(shares, index=labels, columns=labels).rename_axis("grade")
    s.table(f"Grade migration, {a} (rows) to {b} (columns), {len(both):,} accounts on both dates: row shares",
            frame, floats(frame, "{:.1%}"))
    s.text(f"Matrix weighted bandwidth: downgrades {test['mwb_upper']:.3f}, upgrades {test['mwb_lower']:.3f}. "
           f"Cells holding significantly more accounts than their neighbour nearer the diagonal "
           f"({thresholds.migration_level:.0%}, one-sided z-tests of the ECB's instructions): "
           f"{len(test['violations'])}.")
    s.numbers["migration"] = {"from": a, "to": b, "accounts": len(both), "counts": counts.tolist(),
                              "violations": test["violations"], "mwb_downgrades": test["mwb_upper"],
                              "mwb_upgrades": test["mwb_lower"]}
    s.check("grade migration: cells breaking the decay away from the diagonal", len(test["violations"]), "0",
            not test["violations"])


def _concentration(s: Section, ev: Evidence) -> None:
    rows = ev.rows[["account_id", "as_of", "p_default"]][ev.rows["p_default"].notna().to_numpy()]
    rows = rows.assign(as_of=month_of(rows)).drop_duplicates(["account_id", "as_of"], keep="last")
    last = rows[rows["as_of"] == rows["as_of"].max()]
    grades = pd.Series(ev.scale.grade(last["p_default"].to_numpy()))
    counts = np.bincount(grades, minlength=ev.scale.n_grades + 1)[1:]
    h = herfindahl(counts)
    s.figure(f"Accounts by grade as of {pd.Timestamp(last['as_of'].max()).date()}",
             histogram_figure(grades, "Accounts by grade", "grade (1 = safest)"))
    s.text(f"Herfindahl index of the grades: HHI = Σ sᵢ² = {h['hhi']:.4f} (shares sᵢ of accounts), normalised "
           f"(HHI − 1/K)/(1 − 1/K) = {h['hhi_normalised']:.4f} with K = {len(counts)}; the ECB instructions' "
           f"definition from the coefficient of variation, HI = 1 + ln((CV² + 1)/K)/ln K = {h['ecb_hi']:.4f} "
           f"(CV {h['cv']:.3f}). 0 is an even spread, 1 everything in one grade.")
    s.numbers["herfindahl"] = h
