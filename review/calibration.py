"""Calibration: do the predicted probabilities match the rates that followed, per grade, per month and overall?

The per-grade tests (Jeffreys, binomial, traffic lights), Hosmer-Lemeshow and Spiegelhalter assume independent
obligors, so they run on one cohort: the accounts as of the window's latest month end, one row each, as the
ECB's instructions run them on the obligors at the start of the observation period. Pooled over the window an
account counts many times and the tests would be over-confident. Observed ÷ predicted by month and over the
window use intervals clustered by account instead.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from review.evidence import Evidence, groups, month_of
from review.figures import calibration_grades_figure, interval_by_month_figure
from review.pack import Section
from review.thresholds import Thresholds
from validation.metrics import MetricError, observed_over_predicted
from validation.supervisory import binomial_test, hosmer_lemeshow, jeffreys_test, spiegelhalter, traffic_light


def cohort(rows: pd.DataFrame, latest_row: bool = False) -> tuple[str, pd.DataFrame]:
    """One row per account, for the tests that assume independent obligors: the accounts as of the window's
    latest month end, or each account's latest row (`latest_row`); and the cohort in words."""
    if latest_row:
        ordered = rows.sort_values(["account_id", "as_of"], kind="stable")
        return "each account's latest out-of-time row", ordered.drop_duplicates("account_id", keep="last")
    month = month_of(rows)
    last = month.max()
    return f"accounts as of {last.date()}", rows[month == last].drop_duplicates("account_id", keep="last")


def grade_table(rows: pd.DataFrame, ev: Evidence, target: str, thresholds: Thresholds) -> pd.DataFrame:
    """Per master-scale grade: rows, defaults, mean PD, observed rate with its Jeffreys interval, the one-sided
    Jeffreys and binomial p-values and the traffic light; the portfolio in the last row."""
    y, p = rows[f"y_{target}"].to_numpy(), rows[f"p_{target}"].to_numpy()
    grade = ev.scale.grade(p)
    k = ev.scale.n_grades
    n = np.bincount(grade, minlength=k + 1)[1:]
    d = np.bincount(grade, weights=y, minlength=k + 1)[1:]
    s = np.bincount(grade, weights=p, minlength=k + 1)[1:]
    n, d, s = np.append(n, n.sum()), np.append(d, d.sum()), np.append(s, s.sum())
    labels = [ev.scale.label(g) for g in ev.scale.grades] + ["portfolio"]
    used = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pd = np.where(used, s / np.maximum(n, 1), np.nan)
        observed = np.where(used, d / np.maximum(n, 1), np.nan)
    table = pd.DataFrame({"grade": labels, "rows": n, "defaults": d.astype(np.int64), "mean_pd": mean_pd,
                          "observed": observed})
    table["lo"] = np.where(used, stats.beta.ppf(0.025, d + 0.5, n - d + 0.5), np.nan)
    table["hi"] = np.where(used, stats.beta.ppf(0.975, d + 0.5, n - d + 0.5), np.nan)
    jeff, binom, light = (np.full(len(n), np.nan), np.full(len(n), np.nan), np.full(len(n), "", dtype=object))
    jeff[used] = jeffreys_test(n[used], d[used], mean_pd[used])
    binom[used] = binomial_test(n[used], d[used], mean_pd[used])
    light[used] = traffic_light(n[used], d[used], mean_pd[used], levels=thresholds.traffic_light)
    table["jeffreys_p"], table["binomial_p"], table["traffic_light"] = jeff, binom, light
    return table


def section(ev: Evidence, thresholds: Thresholds) -> Section:
    s = Section("calibration", "Calibration")
    s.text("Per-grade tests, Hosmer-Lemeshow and Spiegelhalter run on one row per account (the tests assume "
           "independent obligors). The Jeffreys and binomial tests are "
           "one-sided, as in the ECB's instructions: a small p-value says the PD underestimates the risk. "
           "Observed ÷ predicted intervals are clustered by account.")
    for target in ev.targets:
        rows = ev.scored(target)
        if not len(rows):
            s.missing(f"{target}: no rows with a complete outcome in the window")
            continue
        s.text(f"### {target}")
        day, snap = cohort(rows, ev.cohort_latest_row)
        if target == "default":
            _grades(s, ev, snap, day, thresholds)
        _fit_tests(s, target, snap, day, thresholds)
        _over_time(s, target, rows, thresholds)
    return s


def _grades(s: Section, ev: Evidence, snap: pd.DataFrame, day, thresholds: Thresholds) -> None:
    table = grade_table(snap, ev, "default", thresholds)
    s.table(f"default by grade, {day} (interval: Jeffreys 95 %)", table,
            {"mean_pd": "{:.3%}", "observed": "{:.3%}", "lo": "{:.3%}", "hi": "{:.3%}", "jeffreys_p": ".3g",
             "binomial_p": ".3g"})
    s.figure("default: observed against predicted by grade", calibration_grades_figure(table))
    s.numbers["default_grades"] = table
    alpha = 1 - thresholds.jeffreys_level
    for r in table.itertuples():
        if r.rows == 0:
            continue
        judged = r.rows >= thresholds.min_rows_per_grade or r.grade == "portfolio"
        note = "" if judged else f"{r.rows} rows: fewer than {thresholds.min_rows_per_grade}, not judged"
        s.check(f"default grade {r.grade}: Jeffreys one-sided", r.jeffreys_p, f"p ≥ {alpha:.2g}",
                bool(r.jeffreys_p >= alpha) if judged else None, finding=True, note=note)
        s.check(f"default grade {r.grade}: traffic light", r.traffic_light, "not red",
                (r.traffic_light != "red") if judged else None, finding=True, note=note)


def _fit_tests(s: Section, target: str, snap: pd.DataFrame, day, thresholds: Thresholds) -> None:
    y, p = snap[f"y_{target}"].to_numpy(), snap[f"p_{target}"].to_numpy()
    try:
        hl, sp = hosmer_lemeshow(y, p), spiegelhalter(y, p)
    except MetricError as exc:
        s.check(f"{target}: Hosmer-Lemeshow and Spiegelhalter", None, "", None,
                note=f"{len(y):,} rows ({day}): {exc}")
        return
    s.table(f"{target}: Hosmer-Lemeshow deciles, {day}", hl["table"],
            {"expected": ".1f", "mean_p": ".4f"})
    s.numbers[f"{target}_fit"] = {"hosmer_lemeshow": {k: v for k, v in hl.items() if k != "table"},
                                  "spiegelhalter": sp, "cohort": day}
    a_hl, a_sp = 1 - thresholds.hosmer_lemeshow_level, 1 - thresholds.spiegelhalter_level
    s.check(f"{target}: Hosmer-Lemeshow (χ² {hl['statistic']:.1f}, {hl['dof']} dof)", hl["p_value"],
            f"p ≥ {a_hl:.2g}", bool(hl["p_value"] >= a_hl))
    s.check(f"{target}: Spiegelhalter (z {sp['z']:.2f})", sp["p_value"], f"p ≥ {a_sp:.2g}",
            bool(sp["p_value"] >= a_sp))


def _over_time(s: Section, target: str, rows: pd.DataFrame, thresholds: Thresholds) -> None:
    out = []
    y, p, acc = (rows[c].to_numpy() for c in (f"y_{target}", f"p_{target}", "account_id"))
    for day, at in groups(month_of(rows).to_numpy()):
        r = observed_over_predicted(y[at], p[at], acc[at])
        out.append({"as_of": pd.Timestamp(day), "rows": len(at), "observed": y[at].mean(), "predicted": p[at].mean(),
                    "oe_ratio": r["ratio"], "lo": r["lo"], "hi": r["hi"], "inside": r["inside"]})
    monthly = pd.DataFrame(out)
    s.figure(f"{target}: observed ÷ predicted by month (band: where chance alone puts it)",
             interval_by_month_figure(monthly, "oe_ratio", "observed ÷ predicted", 1.0))
    s.table(f"{target}: observed ÷ predicted by month", monthly,
            {"observed": "{:.3%}", "predicted": "{:.3%}", "oe_ratio": ".3f", "lo": ".3f", "hi": ".3f"})
    pooled = observed_over_predicted(rows[f"y_{target}"].to_numpy(), rows[f"p_{target}"].to_numpy(),
                                     rows["account_id"].to_numpy())
    lo, hi = thresholds.oe_band
    s.check(f"{target}: observed ÷ predicted over the window", pooled["ratio"], f"{lo:g}–{hi:g}",
            bool(lo <= pooled["ratio"] <= hi), finding=True,
            note=f"chance alone: {pooled['lo']:.3f}–{pooled['hi']:.3f} (clustered)")
    s.numbers[f"{target}_by_month"] = monthly
    s.numbers[f"{target}_pooled_oe"] = pooled
