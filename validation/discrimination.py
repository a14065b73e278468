"""Discrimination with its sampling error: DeLong's AUC variance (clustered by account), the paired comparison
of two models, the supervisor's test that the AUC has not declined since development, and the CAP / gains view.

Conventions are those of `validation.metrics`: y 1 = bad, p rises with risk, `groups` the account id of each
row. An account seen at many as-of dates is one cluster: its rows' placement values are summed before the
variance is taken (Obuchowski 1997), so repeated rows of one account do not pass for independent evidence.

Placement values (DeLong, DeLong & Clarke-Pearson 1988) come from midranks in O(n log n) (Sun & Xu 2014):
for a bad, the share of goods it outranks (ties 1/2) is (rank among all - rank among bads) / goods; for a
good, the share of bads that outrank it is 1 - (rank among all - rank among goods) / bads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from validation.metrics import (
    MetricError,
    _both_classes,
    _check,
    _check_level,
    _check_p,
    _check_y,
    _group_codes,
    dense_ranks_or_none,
    equal_frequency_bins,
)

__all__ = [
    "accuracy_ratio",
    "auc_decline_test",
    "cap_points",
    "decline_test",
    "delong",
    "delong_interval",
    "delong_paired",
    "gains_table",
    "ks_ranked",
    "tie_ranks",
]


def tie_ranks(p: Any) -> np.ndarray:
    """Dense ranks of p (0 for the lowest value, ties share one): the same order in integers. Computed once on
    the pooled rows, they let every subset's AUC, DeLong variance and KS be counted without another sort."""
    return np.unique(np.asarray(p, dtype=np.float64), return_inverse=True)[1].astype(np.int64).ravel()


def _block_counts(y: np.ndarray, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bads and goods in each tie block present, and each row's block among them: a subset's ranks are taken
    down to its own blocks first, so a month of a pooled window counts over its blocks, not the window's."""
    ranks = _own_blocks(ranks)
    blocks = int(ranks.max()) + 1 if len(ranks) else 0
    return (np.bincount(ranks, weights=y, minlength=blocks),
            np.bincount(ranks, weights=1.0 - y, minlength=blocks), ranks)


def _own_blocks(ranks: np.ndarray) -> np.ndarray:
    """Dense ranks 0..b-1 over the b distinct values of `ranks` (integers), same order."""
    if not len(ranks):
        return ranks
    top = int(ranks.max()) + 1
    if len(ranks) * 16 < top:  # a small subset: sort it rather than sweep every block of the pool
        return np.unique(ranks, return_inverse=True)[1].ravel()
    present = np.zeros(top, bool)
    present[ranks] = True
    return (np.cumsum(present) - 1)[ranks]


def _placements(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """AUC and each row's placement value: for a bad the share of goods below it, for a good the share of
    bads above it (ties count 1/2). Counted per tie block (one sort at most, none for integer ranks)."""
    ranks = dense_ranks_or_none(p)
    ranks = tie_ranks(p) if ranks is None else ranks  # ranks already: the same order, no sort
    bads, goods, ranks = _block_counts(y, ranks)
    n_bad, n_good = bads.sum(), goods.sum()
    goods_below = np.cumsum(goods) - goods + 0.5 * goods
    bads_above = bads.sum() - np.cumsum(bads) + 0.5 * bads
    bad = y == 1
    v = np.where(bad, goods_below[ranks] / n_good, bads_above[ranks] / n_bad)
    return float(v[bad].mean()), v


def ks_ranked(y: Any, ranks: Any) -> float:
    """KS from dense ranks (`tie_ranks`): the largest gap between the cumulative shares of goods and bads over
    the tie blocks, so ties never inflate it; what `metrics.ks` gives on the scores themselves."""
    y = _check_y(y)
    bads, goods, _ = _block_counts(y, np.asarray(ranks, dtype=np.int64))
    _both_classes(y, "KS")
    return float(np.max(np.abs(np.cumsum(goods) / goods.sum() - np.cumsum(bads) / bads.sum())))


def _covariance(y: np.ndarray, ps: list[np.ndarray], groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of the models in `ps` and their covariance matrix: DeLong's, or Obuchowski's clustered one
    (placement values summed per account) when `groups` is given. One account per row gives DeLong exactly."""
    codes, n_groups = _group_codes(groups, len(y))
    bad = y == 1
    m, n = bad.sum(), (~bad).sum()
    m_k = np.bincount(codes, weights=y, minlength=n_groups)
    n_k = np.bincount(codes, weights=1.0 - y, minlength=n_groups)
    aucs, a, b = [], [], []
    for p in ps:
        theta, v = _placements(y, p)
        aucs.append(theta)
        a.append(np.bincount(codes, weights=np.where(bad, v, 0.0), minlength=n_groups) - m_k * theta)
        b.append(np.bincount(codes, weights=np.where(bad, 0.0, v), minlength=n_groups) - n_k * theta)
    A, B = np.array(a).T, np.array(b).T  # (accounts x models)
    i10, i01 = np.count_nonzero(m_k), np.count_nonzero(n_k)
    if i10 < 2 or i01 < 2:
        raise MetricError(
            f"the AUC variance needs bads and goods from at least 2 accounts each; found {i10} account(s) with "
            f"bads and {i01} with goods"
        )
    s10 = i10 / (i10 - 1) * (A.T @ A) / m
    s01 = i01 / (i01 - 1) * (B.T @ B) / n
    s11 = n_groups / (n_groups - 1) * (A.T @ B)
    return np.array(aucs), s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def _prepared(y: Any, ps: list[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    y = _check_y(y)
    names = ["p"] if len(ps) == 1 else [f"p{i + 1}" for i in range(len(ps))]
    out = [_check_p(p, len(y), name=name) for p, name in zip(ps, names, strict=True)]
    _both_classes(y)
    return y, out


def delong(y: Any, p: Any, groups: Any = None) -> dict[str, float]:
    """AUC with its DeLong variance and standard error: {auc, se, variance}.

    groups: the account id of each row; the variance is then Obuchowski's (1997) cluster-robust one.
    """
    y, (p,) = _prepared(y, [p])
    aucs, cov = _covariance(y, [p], groups)
    return {"auc": float(aucs[0]), "se": float(np.sqrt(cov[0, 0])), "variance": float(cov[0, 0])}


def _z(level: float) -> float:
    from scipy import stats

    _check_level(level)
    return float(stats.norm.ppf(0.5 + level / 2))


def delong_interval(y: Any, p: Any, groups: Any = None, level: float = 0.95) -> tuple[float, float]:
    """Wald interval auc -/+ z se from the DeLong (clustered with groups) standard error, kept inside [0, 1]."""
    z = _z(level)
    d = delong(y, p, groups)
    return max(0.0, d["auc"] - z * d["se"]), min(1.0, d["auc"] + z * d["se"])


def delong_paired(y: Any, p1: Any, p2: Any, groups: Any = None, level: float = 0.95) -> dict[str, float]:
    """AUC(p1) - AUC(p2) on the same rows, with DeLong's paired test: {diff, se, z, p_value, lo, hi}.

    The two AUCs are correlated (same rows, same outcomes); their covariance enters the standard error.
    p_value is two-sided; [lo, hi] the `level` interval of the difference. Clustered by account with groups.
    """
    from scipy import stats

    z_level = _z(level)
    y, ps = _prepared(y, [p1, p2])
    aucs, cov = _covariance(y, ps, groups)
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    # se 0: the two models rank every bad-good pair alike, so the difference is 0 too
    z = diff / se if se > 0 else float(np.sign(diff) * np.inf) if diff else 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    return {"diff": diff, "se": se, "z": z, "p_value": p_value, "lo": diff - z_level * se, "hi": diff + z_level * se}


def auc_decline_test(
    auc_development: float, y: Any, p: Any, groups: Any = None, level: float = 0.95
) -> dict[str, float | bool]:
    """The ECB's one-sided test that the AUC has not declined since development (initial validation).

    ECB, "Instructions for reporting the validation results of internal models - IRB Pillar I models for
    credit risk" (2019), discriminatory power, current AUC vs AUC at initial validation/development:
    S = (AUC_init - AUC_curr) / s_curr, with s_curr the standard error of the current AUC, and
    p-value = 1 - Phi(S). The development AUC is taken as a given number (its own error is ignored, as the
    instructions do). Rejected (the AUC has declined) when p < 1 - level. s_curr here is DeLong's, clustered
    by account with groups. Returns {auc, auc_development, se, statistic, p_value, rejected}.
    """
    _check_level(level)
    d = delong(y, p, groups)
    return decline_test(auc_development, d["auc"], d["se"], level)


def decline_test(auc_development: float, auc: float, se: float, level: float = 0.95) -> dict[str, float | bool]:
    """`auc_decline_test` from the current AUC and its standard error, already computed."""
    from scipy import stats

    _check_level(level)
    if not 0.0 <= float(auc_development) <= 1.0:
        raise MetricError(f"auc_development must be an AUC between 0 and 1, got {auc_development}")
    if se == 0:
        raise MetricError("the current AUC has zero standard error (perfect or constant ranking): nothing to test")
    s = (auc_development - auc) / se
    p_value = float(stats.norm.sf(s))
    return {"auc": float(auc), "auc_development": float(auc_development), "se": float(se), "statistic": float(s),
            "p_value": p_value, "rejected": bool(p_value < 1 - level)}


# ------------------------------------------------------------------------------------------ CAP, gains


def cap_points(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative accuracy profile: (share of rows, share of bads among them) flagging the riskiest first,
    from (0, 0) to (1, 1), one point per distinct p (tied rows enter together, so the curve is linear
    across a tie)."""
    y, p = _check(y, p)
    _both_classes(y, "a CAP curve")
    order = np.argsort(-p, kind="stable")
    ps = p[order]
    last_of_block = np.concatenate((ps[1:] != ps[:-1], [True]))
    rows = np.flatnonzero(last_of_block) + 1
    bads = np.cumsum(y[order])[last_of_block]
    return np.concatenate(([0.0], rows / len(y))), np.concatenate(([0.0], bads / y.sum()))


def accuracy_ratio(y: Any, p: Any) -> float:
    """Accuracy ratio from the CAP: area between the model's CAP and the diagonal over the same area for a
    perfect model. Equals the Gini, 2 AUC - 1, ties included."""
    x, c = cap_points(y, p)
    bad_rate = float(np.mean(_check_y(y)))
    area = float(np.sum((x[1:] - x[:-1]) * (c[1:] + c[:-1]) / 2))  # trapezoids: linear across ties
    return (area - 0.5) / ((1 - bad_rate / 2) - 0.5)


def gains_table(y: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Rows in equal-frequency bins of p (ties kept together), riskiest first: bin (1 = riskiest), rows, bads,
    bad_rate, cum_bads (share of all bads captured down to this bin), lift (bad rate over the overall one).
    p need only rise with risk (a score negated, a probability); empty bins (many ties) are left out."""
    y, p = _check(y, p)
    _both_classes(y, "a gains table")
    b = bins - 1 - equal_frequency_bins(p, bins)  # 0 = highest p
    rows = np.bincount(b, minlength=bins)
    bads = np.bincount(b, weights=y, minlength=bins)
    keep = rows > 0
    rows, bads = rows[keep], bads[keep]
    return pd.DataFrame({
        "bin": np.arange(1, bins + 1)[keep],
        "rows": rows,
        "bads": bads.astype(np.int64),
        "bad_rate": bads / rows,
        "cum_bads": np.cumsum(bads) / y.sum(),
        "lift": (bads / rows) / y.mean(),
    })
