"""The supervisor's calibration, concentration and migration tests of a PD model.

Per-grade tests take arrays with one entry per grade: n (obligors), defaults, pd (the grade's PD).
The definitions follow the ECB's "Instructions for reporting the validation results of internal models -
IRB Pillar I models for credit risk" (2019): Jeffreys test, Herfindahl index via the coefficient of variation,
migration-matrix stability z-tests and the matrix weighted bandwidths; and the literature for the rest
(Tasche 2003 traffic lights, Hosmer & Lemeshow 2000, Spiegelhalter 1986).

Grades are integers 0 .. K-1 ordered by risk (0 the safest), so a move to a higher grade is a downgrade.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from validation.metrics import MetricError, _check, _rows, equal_frequency_bins

__all__ = [
    "binomial_test",
    "herfindahl",
    "hosmer_lemeshow",
    "jeffreys_test",
    "migration_matrix",
    "migration_stability",
    "spiegelhalter",
    "traffic_light",
]


def _counts(x: Any, name: str) -> np.ndarray:
    """A 1-d array of non-negative whole numbers (counts of obligors or defaults)."""
    a = np.atleast_1d(np.asarray(x, dtype=float))
    if a.ndim != 1 or len(a) == 0:
        raise MetricError(f"{name} must be a non-empty list with one count per grade, got shape {a.shape}")
    bad = ~np.isfinite(a) | (a < 0) | (a != np.round(a))
    if bad.any():
        raise MetricError(f"{name} must be non-negative whole numbers; not so in {_rows(bad)}")
    return a


def _grades(n: Any, defaults: Any, pd_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = _counts(n, "n"), _counts(defaults, "defaults")
    p = np.atleast_1d(np.asarray(pd_, dtype=float))
    if not len(n) == len(d) == len(p):
        raise MetricError(f"n, defaults and pd must have one entry per grade; got {len(n)}, {len(d)}, {len(p)}")
    if (d > n).any():
        raise MetricError(f"defaults exceed the obligors n in {_rows(d > n)}")
    outside = ~((p > 0) & (p < 1))
    if outside.any():
        raise MetricError(f"pd must lie strictly between 0 and 1; it does not in {_rows(outside)}")
    return n, d, p


# -------------------------------------------------------------------------------------- per-grade tests


def jeffreys_test(n: Any, defaults: Any, pd: Any) -> np.ndarray:
    """One-sided Jeffreys p-value per grade (ECB 2019): BetaCDF(pd; defaults + 1/2, n - defaults + 1/2).

    The posterior of the default rate under the Jeffreys prior Beta(1/2, 1/2), evaluated at the PD: a small
    value says the PD lies below most of the posterior, i.e. underestimates the risk. The test is one-sided on
    purpose; a common pitfall is to report it two-sided, which also flags grades whose PD is conservative.
    """
    from scipy import stats

    n, d, p = _grades(n, defaults, pd)
    return stats.beta.cdf(p, d + 0.5, n - d + 0.5)


def binomial_test(n: Any, defaults: Any, pd: Any) -> np.ndarray:
    """One-sided binomial p-value per grade: P(X >= defaults) for X ~ Binomial(n, pd), defaults independent."""
    from scipy import stats

    n, d, p = _grades(n, defaults, pd)
    return stats.binom.sf(d - 1, n, p)


def traffic_light(n: Any, defaults: Any, pd: Any, levels: tuple[float, float] = (0.95, 0.999)) -> np.ndarray:
    """'green', 'yellow' or 'red' per grade (Tasche 2003), on the binomial distribution of defaults.

    With q(a) the a-quantile of Binomial(n, pd) (the smallest k with P(X <= k) >= a): green when
    defaults < q(levels[0]), red when defaults >= q(levels[1]), yellow between. Equivalently green while
    P(X <= defaults) < levels[0], as in the Basel backtesting zones (levels (0.95, 0.9999) give them exactly).
    """
    from scipy import stats

    n, d, p = _grades(n, defaults, pd)
    low, high = levels
    if not 0 < low < high < 1:
        raise MetricError(f"levels must be two probabilities, lower first, e.g. (0.95, 0.999); got {levels}")
    cdf = stats.binom.cdf(d, n, p)
    return np.where(cdf >= high, "red", np.where(cdf >= low, "yellow", "green"))


# ------------------------------------------------------------------------------------ row-level tests


def hosmer_lemeshow(y: Any, p: Any, groups: int = 10) -> dict[str, Any]:
    """Hosmer-Lemeshow goodness of fit (Hosmer & Lemeshow 2000): {statistic, dof, p_value, table}.

    Rows in `groups` equal-frequency bins of p, ties kept together (`equal_frequency_bins`); statistic
    sum over bins of (observed - expected)^2 / (expected (1 - expected / rows)), chi-square with
    (non-empty bins - 2) degrees of freedom. table: bin, rows, observed, expected, mean_p.
    """
    from scipy import stats

    y, p = _check(y, p, probability=True)
    if groups < 3:
        raise MetricError(f"groups must be at least 3 (the test has groups - 2 degrees of freedom), got {groups}")
    b = equal_frequency_bins(p, groups)
    rows = np.bincount(b, minlength=groups)
    keep = rows > 0
    rows = rows[keep]
    observed = np.bincount(b, weights=y, minlength=groups)[keep]
    expected = np.bincount(b, weights=p, minlength=groups)[keep]
    variance = expected * (1 - expected / rows)
    if (variance <= 0).any():
        raise MetricError("a bin's predictions are all 0 or all 1: the Hosmer-Lemeshow variance vanishes there")
    if len(rows) < 3:
        raise MetricError(f"p takes too few distinct values for {groups} bins: only {len(rows)} are non-empty")
    statistic = float(np.sum((observed - expected) ** 2 / variance))
    dof = len(rows) - 2
    table = pd.DataFrame({"bin": np.flatnonzero(keep), "rows": rows, "observed": observed.astype(np.int64),
                          "expected": expected, "mean_p": expected / rows})
    return {"statistic": statistic, "dof": dof, "p_value": float(stats.chi2.sf(statistic, dof)), "table": table}


def spiegelhalter(y: Any, p: Any) -> dict[str, float]:
    """Spiegelhalter (1986) z-test of calibration, row by row: {z, p_value} (two-sided).

    z = sum((y - p)(1 - 2p)) / sqrt(sum((1 - 2p)^2 p (1 - p))): the Brier score against its expectation
    under calibrated predictions.
    """
    from scipy import stats

    y, p = _check(y, p, probability=True)
    w = 1 - 2 * p
    variance = float(np.sum(w**2 * p * (1 - p)))
    if variance <= 0:
        raise MetricError("every prediction is 0, 1/2 or 1: the Spiegelhalter statistic has no variance")
    z = float(np.sum((y - p) * w) / np.sqrt(variance))
    return {"z": z, "p_value": float(2 * stats.norm.sf(abs(z)))}


# ------------------------------------------------------------------------------------- concentration


def herfindahl(counts: Any) -> dict[str, float]:
    """Concentration of obligors across K grades: {hhi, hhi_normalised, cv, ecb_hi}.

    hhi = sum(s_i^2) of the grade shares s_i (1/K uniform .. 1 all in one grade); hhi_normalised =
    (hhi - 1/K) / (1 - 1/K) (0 .. 1). The ECB instructions define it through the coefficient of variation
    CV = sqrt(K sum((s_i - 1/K)^2)) as HI = 1 + ln((CV^2 + 1) / K) / ln(K); since CV^2 + 1 = K hhi this is
    1 + ln(hhi) / ln(K), also 0 uniform .. 1 all in one grade.
    """
    c = _counts(counts, "counts")
    k = len(c)
    if k < 2 or c.sum() == 0:
        raise MetricError(f"concentration needs at least 2 grades and some obligors; got {k} grades, {c.sum():g}")
    s = c / c.sum()
    hhi = float(np.sum(s**2))
    cv = float(np.sqrt(k * np.sum((s - 1 / k) ** 2)))
    return {"hhi": hhi, "hhi_normalised": (hhi - 1 / k) / (1 - 1 / k), "cv": cv,
            "ecb_hi": float(1 + np.log((cv**2 + 1) / k) / np.log(k))}


# ---------------------------------------------------------------------------------------- migrations


def migration_matrix(grade_from: Any, grade_to: Any, n_grades: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts (K x K: row the grade at the start, column at the end) and row shares (NaN for an empty row).

    Grades are integers 0 .. n_grades - 1 ordered by risk; one entry per obligor present at both dates.
    """
    a, b = np.asarray(grade_from), np.asarray(grade_to)
    if a.shape != b.shape or a.ndim != 1:
        raise MetricError(f"grade_from and grade_to must be 1-d of the same length, got {a.shape} and {b.shape}")
    for g, name in ((a, "grade_from"), (b, "grade_to")):
        g = g.astype(float)
        bad = ~np.isfinite(g) | (g != np.round(g)) | (g < 0) | (g >= n_grades)
        if bad.any():
            raise MetricError(f"{name} must be whole grades 0 .. {n_grades - 1}; not so in {_rows(bad)}")
    counts = np.bincount(a.astype(np.int64) * n_grades + b.astype(np.int64), minlength=n_grades * n_grades)
    counts = counts.reshape(n_grades, n_grades)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / counts.sum(axis=1, keepdims=True)
    return counts, shares


def _bandwidth(counts: np.ndarray, side: np.ndarray) -> float:
    """ECB matrix weighted bandwidth of the cells on one side of the diagonal (0 when none moved there)."""
    k = len(counts)
    i, j = np.indices(counts.shape)
    furthest = np.maximum(i, k - 1 - i)  # the largest move possible from grade i
    top = float(np.sum((np.abs(i - j) * counts)[side]))
    bottom = float(np.sum((furthest * counts)[side]))
    return top / bottom if bottom > 0 else 0.0


def migration_stability(counts: Any, level: float = 0.95, n_start: Any = None) -> dict[str, Any]:
    """The ECB instructions' tests that a migration matrix decays away from its diagonal.

    For a cell above the diagonal (j > i), p_ij against its neighbour nearer the diagonal n = p_i,j-1 (below:
    n = p_i,j+1): z_ij = (n - p_ij) / sqrt((p_ij (1 - p_ij) + n (1 - n) + 2 p_ij n) / N_i), the multinomial
    standard error of the difference. p_value = Phi(z_ij); a cell with p_value < 1 - level holds significantly
    more obligors than its neighbour nearer the diagonal: a violation. N_i: obligors in grade i at the start
    (n_start, e.g. including those who defaulted or left; default: the row totals).
    Returns {z, p_value (K x K, NaN on the diagonal and where undefined), violations [(i, j)], mwb_upper
    (moves to higher, riskier grades: downgrades), mwb_lower (upgrades)}.
    """
    from scipy import stats

    c = np.asarray(counts, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise MetricError(f"counts must be a square K x K matrix with K >= 2, got shape {c.shape}")
    _counts(c.ravel(), "counts")
    rows = c.sum(axis=1) if n_start is None else _counts(n_start, "n_start")
    if len(rows) != len(c) or (rows < c.sum(axis=1)).any():
        raise MetricError("n_start must give, per grade, at least the obligors counted in the matrix row")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = c / rows[:, None]
        i, j = np.indices(c.shape)
        near = np.where(j > i, np.roll(share, 1, axis=1), np.roll(share, -1, axis=1))  # neighbour toward diag
        se = np.sqrt((share * (1 - share) + near * (1 - near) + 2 * share * near) / rows[:, None])
        z = (near - share) / se
    z[i == j] = np.nan
    p_value = stats.norm.cdf(z)
    violations = [(int(a), int(b)) for a, b in zip(*np.nonzero(p_value < 1 - level), strict=True)]
    return {"z": z, "p_value": p_value, "violations": violations,
            "mwb_upper": _bandwidth(c, j > i), "mwb_lower": _bandwidth(c, j < i)}
