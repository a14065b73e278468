"""Decisions, from what the nightly job logged: limit actions by grade, early warnings and what followed, and
each collection treatment's cure rate against the control cell's.

The control cell is the job's randomised hold-out: an account in it gets the mildest treatment whatever its
intended one, with a probability the output records. Within one intended treatment, treated and control
accounts differ only by that draw, so the difference of their cure rates estimates the treatment's effect.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from features.key_lookup import value_at
from review.evidence import Evidence, month_of
from review.pack import Section

CURE = "cured"  # back to 0 DPD by the next month end


def clustered_rate(y: np.ndarray, groups: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """A rate and its interval, the variance clustered by account (rows of one account move together)."""
    if len(y) == 0:
        return np.nan, np.nan, np.nan
    rate = float(y.mean())
    codes = pd.factorize(groups)[0]
    var = float((np.bincount(codes, weights=y - rate) ** 2).sum()) / len(y) ** 2
    half = float(norm.ppf(0.5 + level / 2)) * np.sqrt(var)
    return rate, rate - half, rate + half


def cure_flags(portfolio: pd.DataFrame | None, rows: pd.DataFrame) -> pd.Series:
    """Whether each row's account is back to 0 DPD at the next month end of the book's snapshots (NaN:
    unknown, or a row not as of a month end)."""
    if portfolio is None or not len(portfolio):
        return pd.Series(np.nan, index=rows.index)
    day = pd.to_datetime(rows["as_of"])
    month_end = (month_of(rows) == day).to_numpy()
    following = rows[["account_id"]].assign(as_of=month_of(pd.DataFrame({"as_of": day + pd.Timedelta(days=1)})))
    dpd = value_at(portfolio, "dpd", following)
    return pd.Series(np.where(np.isnan(dpd) | ~month_end, np.nan, dpd == 0), index=rows.index)


def section(ev: Evidence) -> Section:
    s = Section("decisions", "Decisions")
    rows = ev.rows
    if "limit_action" not in rows or rows["limit_action"].isna().all():
        s.missing("decisions: the predictions carry no logged decisions (the training's out-of-time slice has "
                  "predictions only; review the nightly job's score files for them)")
        return s
    _limits(s, ev)
    _early_warnings(s, ev)
    _collections(s, ev)
    s.missing("back-testing the loss budget's LGD and CCF: the data hold no recoveries, loss amounts or drawings "
              "at default to hold them against")
    return s


def _limits(s: Section, ev: Evidence) -> None:
    rows = ev.rows[["p_default", "limit_action"]][(ev.rows["p_default"].notna() & ev.rows["limit_action"].notna())
                                                   .to_numpy()]
    grade = pd.Series(ev.scale.grade(rows["p_default"].to_numpy()), index=rows.index, name="grade")
    table = pd.crosstab(grade, rows["limit_action"])
    s.table("Limit actions by grade (accounts × month ends)", table)
    s.numbers["limit_actions_by_grade"] = table


def _early_warnings(s: Section, ev: Evidence) -> None:
    columns = ["account_id", "early_warning", "y_early_warning", *(["y_default"] if "y_default" in ev.rows else [])]
    rows = ev.rows[columns][(ev.rows["early_warning"].notna() & ev.rows["y_early_warning"].notna()).to_numpy()]
    if not len(rows):
        s.missing("early warnings: no flagged month end with a complete outcome")
        return
    out = []
    for flag, g in rows.groupby("early_warning"):
        late = clustered_rate(g["y_early_warning"].to_numpy(), g["account_id"].to_numpy())
        default = g["y_default"].dropna() if "y_default" in g else pd.Series(dtype=float)
        out.append({"flagged": bool(flag), "rows": len(g), "next bill late": late[0], "lo": late[1],
                    "hi": late[2], "default within 6 months": default.mean() if len(default) else np.nan})
    table = pd.DataFrame(out)
    s.table("Early warnings and what followed (interval clustered by account)", table,
            {"next bill late": "{:.2%}", "lo": "{:.2%}", "hi": "{:.2%}", "default within 6 months": "{:.2%}"})
    s.numbers["early_warnings"] = table


def _collections(s: Section, ev: Evidence) -> None:
    late = ev.rows[["account_id", "as_of", "collection_intended", "control_cell"]][
        ev.rows["collection_intended"].notna().to_numpy()]
    rows = late.assign(**{CURE: cure_flags(ev.portfolio, late)})
    rows = rows[rows[CURE].notna()]
    if not len(rows):
        s.missing("collection treatments: no late account with a next month end to see whether it cured")
        return
    out = []
    for intended, g in rows.groupby("collection_intended"):
        arms = {arm: clustered_rate(a[CURE].to_numpy(float), a["account_id"].to_numpy())
                for arm, a in g.groupby(g["control_cell"].fillna(False).astype(bool))}
        treated, control = arms.get(False, (np.nan,) * 3), arms.get(True, (np.nan,) * 3)
        n_t, n_c = int((~g["control_cell"].fillna(False)).sum()), int(g["control_cell"].fillna(False).sum())
        diff, lo, hi = _difference(g, n_t, n_c)
        out.append({"intended": intended, "treated": n_t, "control": n_c, "cure treated": treated[0],
                    "cure control": control[0], "effect": diff, "lo": lo, "hi": hi})
    table = pd.DataFrame(out)
    s.table("Cure by the next month end: treated against control cell, per intended treatment (effect interval "
            "95 %, clustered by account)", table,
            {"cure treated": "{:.1%}", "cure control": "{:.1%}", "effect": "{:+.1%}", "lo": "{:+.1%}",
             "hi": "{:+.1%}"})
    if any(c.startswith("oracle_") for c in ev.rows.columns):
        s.text("The synthetic world does not react to treatments yet: its accounts cure or not whatever they are "
               "sent, so an effect near 0 is what these data can show.")
    s.numbers["collections"] = table


def _difference(g: pd.DataFrame, n_t: int, n_c: int) -> tuple[float, float, float]:
    """Cure rate of treated minus control, with a clustered interval (the arms are independent draws)."""
    if n_t == 0 or n_c == 0:
        return np.nan, np.nan, np.nan
    control = g["control_cell"].fillna(False).astype(bool).to_numpy()
    y, acc = g[CURE].to_numpy(float), g["account_id"].to_numpy()
    t = clustered_rate(y[~control], acc[~control])
    c = clustered_rate(y[control], acc[control])
    z = float(norm.ppf(0.975))
    se = np.hypot((t[2] - t[0]) / z, (c[2] - c[0]) / z)
    diff = t[0] - c[0]
    return diff, diff - z * se, diff + z * se
