"""Model-validation metrics: discrimination, calibration, uncertainty and drift.

Conventions used throughout:
  * ``y`` is the outcome, 1 = bad (the event happened), 0 = good. Rows outside a target's population carry
    a missing label in the panel and must be dropped before validating; a missing ``y`` is refused here.
  * ``p`` rises with risk: a probability of the event, or any score ordered the same way. Consumer scores
    (350-950, higher = safer) must be negated before `auc` / `ks`. Probability-only metrics (`brier`,
    `log_loss`, `ece`, `calibration_table`) also require ``0 <= p <= 1``.
  * Equal-frequency bins are formed on ranks with ties kept together: a row's bin is
    ``floor(bins * (number of rows with a strictly smaller p) / n)``. With distinct predictions the bins hold
    ``n / bins`` rows each; tied predictions always share a bin, so the result never depends on row order.
  * Everything is vectorised: sorts, cumulative sums and ``bincount`` — no per-row Python.

The account-level (cluster) bootstrap resamples accounts, not rows: an account observed at many as-of
dates is one draw, and all its rows come along. Rows of one account are strongly correlated, so a row
bootstrap would understate the uncertainty. It is fast because an account's weight in a resample is just
how many times it was drawn: the AUC of a resample is a weighted AUC, computed for a block of resamples at
once from per-(score tie block, account) counts with one sparse product and one cumulative sum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DRIFT_THRESHOLDS",
    "RANGE_MARGIN",
    "MetricError",
    "auc",
    "bin_counts",
    "bootstrap_auc_ci",
    "bootstrap_auc_diff_ci",
    "bootstrap_aucs",
    "brier",
    "calibration_by_period",
    "calibration_by_segment",
    "calibration_table",
    "drift_level",
    "ece",
    "equal_frequency_bins",
    "gini",
    "ks",
    "log_loss",
    "metric_set",
    "outside",
    "psi",
    "psi_from_counts",
    "range_level",
    "reference_distribution",
    "roc_points",
    "training_range",
]

SAMPLE = 3  # offending rows shown in an error
LOG_LOSS_EPS = 1e-15  # predictions are clipped to [eps, 1 - eps] before taking logs
PSI_EPS = 1e-4  # share given to an empty bin so that PSI stays finite
DRIFT_THRESHOLDS = (0.1, 0.25)  # psi < 0.1 stable, 0.1..0.25 warning, > 0.25 alert
RANGE_MARGIN = 0.25
"""How far a one-value-per-date feature (the economy) may lie outside the range it took in training before it
alerts, as a share of that range's width; outside the range by less, it warns (`range_level`).

Any value outside the range is one the models never saw: their trees are flat beyond the outermost split, so
they score it as the nearest edge. A share of the width keeps the margin in the indicator's own units and
scale, as the models saw it move. A quarter of it is more than a rounding or a revision of the published
figure, or a seasonal peak a short training window just missed (those warn); a downturn moves an indicator by
several widths of a calm period's range (the simulated shock lifts the stress index by five times its
seasonal swing), and alerts from the month it is published.
"""
_DRAWS_HELD = 16_000_000  # accounts x resamples drawn at once by the bootstrap (~128 MB)


class MetricError(ValueError):
    """Inputs a metric cannot be computed on; the message says what is wrong and what to do."""


# ---------------------------------------------------------------------------------------------- inputs


def _as_float(x: Any, name: str) -> np.ndarray:
    if isinstance(x, pd.Series | pd.Index):
        if isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == object or pd.api.types.is_string_dtype(x.dtype):
            raise MetricError(f"{name} must be numeric, got dtype {x.dtype}")
        arr = x.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind in "USM":
            try:
                arr = arr.astype(float)
            except (TypeError, ValueError):
                raise MetricError(f"{name} must be numeric, got dtype {arr.dtype}") from None
        arr = arr.astype(float, copy=False)
    if arr.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _rows(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:SAMPLE])
    return f"{len(idx):,} of {len(mask):,} rows (positions {shown}{', ...' if len(idx) > SAMPLE else ''})"


def _check_y(y: Any) -> np.ndarray:
    y = _as_float(y, "y")
    if len(y) == 0:
        raise MetricError("y is empty: nothing to validate")
    missing = np.isnan(y)
    if missing.any():
        raise MetricError(
            f"y is missing in {_rows(missing)}: labels are missing outside a target's population or when the "
            "performance window is incomplete; drop those rows before validating"
        )
    bad = (y != 0) & (y != 1)
    if bad.any():
        found = ", ".join(f"{v:g}" for v in np.unique(y[bad])[:SAMPLE])
        raise MetricError(f"y must be 0 (good) or 1 (bad); found {found} in {_rows(bad)}")
    return y


def _check_p(p: Any, n: int, name: str = "p", probability: bool = False) -> np.ndarray:
    p = _as_float(p, name)
    if len(p) != n:
        raise MetricError(f"{name} has {len(p):,} values but y has {n:,}: pass one prediction per labelled row")
    missing = np.isnan(p)
    if missing.any():
        raise MetricError(f"{name} is NaN in {_rows(missing)}: every labelled row needs a prediction")
    infinite = np.isinf(p)
    if infinite.any():
        raise MetricError(f"{name} is infinite in {_rows(infinite)}")
    if probability:
        outside = (p < 0) | (p > 1)
        if outside.any():
            raise MetricError(
                f"{name} must be a probability in [0, 1]; it is outside in {_rows(outside)} "
                f"(min {p.min():g}, max {p.max():g}). Pass calibrated probabilities, not scores"
            )
    return p


def _check(y: Any, p: Any, probability: bool = False) -> tuple[np.ndarray, np.ndarray]:
    y = _check_y(y)
    return y, _check_p(p, len(y), probability=probability)


def _both_classes(y: np.ndarray, what: str = "AUC") -> None:
    n_bad = int(y.sum())
    if n_bad == 0 or n_bad == len(y):
        only = "all 0" if n_bad == 0 else "all 1"
        raise MetricError(f"only one class in y ({only}): {what} needs both goods and bads")


def _group_codes(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 for the group (account) of each row; None: every row its own group."""
    if groups is None:
        return np.arange(n), n
    values = groups.to_numpy() if isinstance(groups, pd.Series | pd.Index) else np.asarray(groups)
    if values.ndim != 1 or len(values) != n:
        raise MetricError(f"groups has shape {values.shape} but y has {n:,} rows: pass one account id per row")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    missing = codes < 0
    if missing.any():
        raise MetricError(f"groups (account ids) are missing in {_rows(missing)}")
    return codes.astype(np.int64), len(uniques)


# ---------------------------------------------------------------------------------------- ranks, bins


def _tie_blocks(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order of p and, in that order, the tie-block id of each row (0 .. n_blocks-1, ascending p)."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    block = np.concatenate(([0], np.cumsum(ps[1:] != ps[:-1])))
    return order, block


def equal_frequency_bins(p: Any, bins: int = 10) -> np.ndarray:
    """Bin index 0..bins-1 of each value, by rank with ties kept together (see the module docstring)."""
    p = _as_float(p, "p")
    if bins < 1:
        raise MetricError(f"bins must be at least 1, got {bins}")
    if np.isnan(p).any():
        raise MetricError(f"p is NaN in {_rows(np.isnan(p))}")
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = dense_ranks_or_none(p)
    if ranks is not None:  # ranks already: rows with a smaller value are counted, not sorted
        counts = np.bincount(ranks)
        smaller = (np.cumsum(counts) - counts)[ranks]
    else:
        order, block = _tie_blocks(p)
        # rows with a strictly smaller value = position of the first row of the row's tie block
        first = np.flatnonzero(np.concatenate(([True], block[1:] != block[:-1])))
        smaller = np.empty(n, dtype=np.int64)
        smaller[order] = first[block]
    return np.minimum(smaller * bins // max(n, 1), bins - 1)


def dense_ranks_or_none(p: np.ndarray) -> np.ndarray | None:
    """p as int64 when it holds ranks already (whole numbers from 0 below 4 x its length, as `tie_ranks` and
    its subsets give): the same order, so what is counted on them needs no sort. None otherwise."""
    if not len(p) or p.min() < 0 or p.max() >= 4 * len(p):
        return None
    ranks = p.astype(np.int64)
    return ranks if np.array_equal(ranks, p) else None


# ------------------------------------------------------------------------------------- discrimination


def _auc_sorted(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted one half; y, p already checked."""
    from scipy import stats  # imported where used: the batch scoring job needs only the light functions

    ranks = stats.rankdata(p)  # average ranks: ties count 1/2
    n_bad = y.sum()
    n_good = len(y) - n_bad
    return float((ranks[y == 1].sum() - n_bad * (n_bad + 1) / 2) / (n_bad * n_good))


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve: the chance that a random bad has a higher p than a random good (ties 1/2)."""
    y, p = _check(y, p)
    _both_classes(y)
    return _auc_sorted(y, p)


def gini(y: Any, p: Any) -> float:
    """Gini coefficient (accuracy ratio) = 2 AUC - 1."""
    return 2.0 * auc(y, p) - 1.0


def _cdf_steps(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds t (ascending) and the share of bads and of goods with p <= t."""
    order, block = _tie_blocks(p)
    ys = y[order]
    n_blocks = block[-1] + 1
    bads = np.bincount(block, weights=ys, minlength=n_blocks)
    rows = np.bincount(block, minlength=n_blocks)
    thresholds = p[order][np.concatenate(([True], block[1:] != block[:-1]))]
    return thresholds, np.cumsum(bads) / ys.sum(), np.cumsum(rows - bads) / (len(ys) - ys.sum())


def ks(y: Any, p: Any) -> float:
    """Kolmogorov-Smirnov statistic: max over thresholds t of |F_bad(t) - F_good(t)|, F the CDF of p."""
    y, p = _check(y, p)
    _both_classes(y, "KS")
    _, f_bad, f_good = _cdf_steps(y, p)
    return float(np.max(np.abs(f_bad - f_good)))


def roc_points(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve (false-positive rate, true-positive rate) from (0, 0) to (1, 1), one point per distinct p."""
    y, p = _check(y, p)
    _both_classes(y, "a ROC curve")
    _, f_bad, f_good = _cdf_steps(y, p)
    # flagging rows with p > t: tpr = 1 - F_bad(t); walk thresholds from the highest down
    tpr = np.concatenate(([0.0], (1.0 - f_bad)[::-1][1:], [1.0]))
    fpr = np.concatenate(([0.0], (1.0 - f_good)[::-1][1:], [1.0]))
    return fpr, tpr


# ----------------------------------------------------------------------------------------- calibration


def brier(y: Any, p: Any) -> float:
    """Mean squared difference between predicted probability and outcome."""
    y, p = _check(y, p, probability=True)
    return float(np.mean((p - y) ** 2))


def log_loss(y: Any, p: Any, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-likelihood, predictions clipped to [eps, 1 - eps] so a confident miss stays finite."""
    y, p = _check(y, p, probability=True)
    q = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))


def ece(y: Any, p: Any, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-frequency bins of (share of rows) * |observed - predicted|."""
    y, p = _check(y, p, probability=True)
    b = equal_frequency_bins(p, bins)
    bads = np.bincount(b, weights=y, minlength=bins)
    predicted = np.bincount(b, weights=p, minlength=bins)
    return float(np.sum(np.abs(bads - predicted)) / len(y))  # sum_b n_b/n * |bads_b/n_b - predicted_b/n_b|


def calibration_table(y: Any, p: Any, bins: int = 10, level: float = 0.95, method: str = "binomial",
                      groups: Any = None) -> pd.DataFrame:
    """Predicted vs observed event rate per equal-frequency bin of p, with the interval expected by chance.

    The interval is where the observed rate of a bin falls with probability `level` *if the predictions are
    right*:
      method="binomial" (default): exact binomial quantiles of Binomial(n, mean predicted rate), divided by
        n. Exact for small counts (a bin of 500 rows at 1 % expects 5 bads, where a normal approximation
        fails); slightly conservative, because a bin's predictions are not all equal and the true count
        (Poisson-binomial) varies a little less than a binomial at the mean.
      method="normal": mean predicted ± z * sqrt(sum p(1-p)) / n — the Poisson-binomial variance with a normal
        approximation, clipped to [0, 1]; fine when each bin expects a few dozen bads or more.
      method="clustered": mean predicted ± z * sqrt(sum over accounts of (sum of y - p)^2) / n, the
        cluster-robust spread when an account's rows move together (one account seen at several as-of
        dates); needs `groups`, the account of each row.
    `inside` is True when the observed rate lies in the closed interval. The acceptance test is "inside in
    at least 9 of 10 deciles".

    Columns: bin, n, bads, p_min, p_max, predicted, observed, lo, hi, inside.
    """
    y, p = _check(y, p, probability=True)
    _check_level(level)
    b = equal_frequency_bins(p, bins)
    n_all = np.bincount(b, minlength=bins)
    keep = n_all > 0
    n = n_all[keep]
    bads = np.bincount(b, weights=y, minlength=bins)[keep]
    predicted = np.bincount(b, weights=p, minlength=bins)[keep] / n
    p_min = pd.Series(p).groupby(b).min().to_numpy()
    p_max = pd.Series(p).groupby(b).max().to_numpy()
    if method == "clustered":
        lo, hi = _clustered_interval(y, p, b, groups, bins, level)
        lo, hi = predicted + lo[keep], predicted + hi[keep]
    else:
        lo, hi = _chance_interval(n, predicted, np.bincount(b, weights=p * (1.0 - p), minlength=bins)[keep], level,
                                  method)
    observed = bads / n
    tol = 1e-12  # observed and the binomial bounds are both count / n
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep) + 1,
            "n": n,
            "bads": bads.astype(np.int64),
            "p_min": p_min,
            "p_max": p_max,
            "predicted": predicted,
            "observed": observed,
            "lo": lo,
            "hi": hi,
            "inside": (observed >= lo - tol) & (observed <= hi + tol),
        }
    )


def calibration_by_period(y: Any, p: Any, period: Any, level: float = 0.95) -> pd.DataFrame:
    """Predicted vs observed event rate per period (e.g. as-of month), with the binomial interval of
    `calibration_table`: calibration in the large over time. A model can rank well and still drift in level
    as the portfolio changes; deciles pooled over an out-of-time slice show the miss, this shows its course.

    Columns: period, n, bads, predicted, observed, oe_ratio (observed / predicted), lo, hi, inside.
    """
    y, p = _check(y, p, probability=True)
    _check_level(level)
    period = np.asarray(period)
    if period.shape != y.shape:
        raise MetricError(f"period has shape {period.shape}, expected {y.shape} (one per row)")
    codes, keys = pd.factorize(period, sort=True)
    if (codes < 0).any():
        rows = np.flatnonzero(codes < 0)
        raise MetricError(f"period is missing in {len(rows)} row(s), e.g. rows {rows[:SAMPLE].tolist()}: every row "
                          "needs its period")
    n = np.bincount(codes, minlength=len(keys))
    bads = np.bincount(codes, weights=y, minlength=len(keys))
    predicted = np.bincount(codes, weights=p, minlength=len(keys)) / n
    lo, hi = _chance_interval(n, predicted, None, level, "binomial")
    observed = bads / n
    tol = 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        oe = observed / predicted
    return pd.DataFrame({"period": keys, "n": n, "bads": bads.astype(np.int64), "predicted": predicted,
                         "observed": observed, "oe_ratio": oe, "lo": lo, "hi": hi,
                         "inside": (observed >= lo - tol) & (observed <= hi + tol)})


def calibration_by_segment(y: Any, p: Any, features: pd.DataFrame, bands: int = 5, level: float = 0.95,
                           oracle: Any = None) -> pd.DataFrame:
    """Predicted vs observed event rate per band of each feature (`calibration_by_period`'s columns): where in
    the portfolio a level miss sits. Deciles of p say that a model is off; this says for whom -- e.g. that
    accounts with long clean records or cash loans are over-predicted out of time.

    A feature with at most `bands` distinct values gets one segment per value; any other one `bands`
    equal-frequency bands (ties kept together), labelled by their lowest and highest value. Missing values
    are a segment of their own. With `oracle` (a reference probability per row, NaN where unknown), the
    column `oracle` holds its mean per segment.

    Columns: feature, segment, n, bads, predicted, observed, oe_ratio, lo, hi, inside (, oracle).
    """
    y, p = _check(y, p, probability=True)
    if not isinstance(features, pd.DataFrame):
        raise MetricError(f"features must be a DataFrame (one column per feature), got {type(features).__name__}")
    if len(features) != len(y):
        raise MetricError(f"features has {len(features)} rows, expected {len(y)} (one per row of y)")
    if bands < 1:
        raise MetricError(f"bands must be at least 1, got {bands}")
    q = None if oracle is None else _as_float(oracle, "oracle")
    if q is not None and q.shape != y.shape:
        raise MetricError(f"oracle has shape {q.shape}, expected {y.shape} (one per row)")
    known = None if q is None else ~np.isnan(q)
    parts = []
    for name in features.columns:
        x = pd.to_numeric(features[name], errors="coerce").to_numpy(np.float64)
        bad = features[name].notna().to_numpy() & np.isnan(x)
        if bad.any():
            raise MetricError(f"feature {name!r} is not numeric in {_rows(bad)}")
        codes, labels = _segments(x, bands)
        table = calibration_by_period(y, p, codes, level).rename(columns={"period": "segment"})
        if q is not None:
            total = np.bincount(codes[known], weights=q[known], minlength=len(labels))
            count = np.bincount(codes[known], minlength=len(labels))
            with np.errstate(divide="ignore", invalid="ignore"):
                table["oracle"] = (total / count)[table["segment"]]
        table["segment"] = [labels[c] for c in table["segment"]]
        parts.append(table.assign(feature=name))
    columns = ["feature", "segment", "n", "bads", "predicted", "observed", "oe_ratio", "lo", "hi", "inside"]
    if q is not None:
        columns.append("oracle")
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _segments(x: np.ndarray, bands: int) -> tuple[np.ndarray, list[str]]:
    """Each row's segment code (in value order, missing last) and the segments' labels."""
    known = ~np.isnan(x)
    values = np.unique(x[known])
    codes = np.zeros(len(x), dtype=np.int64)
    if len(values) <= bands:
        codes[known] = np.searchsorted(values, x[known])
        labels = [f"{v:.4g}" for v in values]
    else:
        band = equal_frequency_bins(x[known], bands)
        codes[known] = band
        lo = pd.Series(x[known]).groupby(band).min()
        hi = pd.Series(x[known]).groupby(band).max()
        labels = [("" if b not in lo.index else f"{lo[b]:.4g}" if lo[b] == hi[b] else f"{lo[b]:.4g} .. {hi[b]:.4g}")
                  for b in range(bands)]
    codes[~known] = len(labels)
    return codes, [*labels, "missing"]


def _clustered_interval(y: np.ndarray, p: np.ndarray, bins: np.ndarray, groups: Any, n_bins: int,
                        level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per bin, -/+ z times the cluster-robust standard error of the observed rate around the predicted one:
    residuals y - p summed within each (bin, account), squared, summed over accounts."""
    from scipy import stats

    if groups is None:
        raise MetricError("method='clustered' needs groups: the account of each row")
    codes, n_groups = _group_codes(groups, len(y))
    cell = bins.astype(np.int64) * n_groups + codes
    sums = np.bincount(cell, weights=y - p, minlength=n_bins * n_groups).reshape(n_bins, n_groups)
    n = np.maximum(np.bincount(bins, minlength=n_bins), 1)
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt((sums ** 2).sum(axis=1)) / n
    return -half, half


def observed_over_predicted(y: Any, p: Any, groups: Any = None, level: float = 0.95) -> dict:
    """Observed events over predicted ones, and where that ratio falls with probability `level` if the
    predictions are right (cluster-robust by account when `groups` is given; rows independent otherwise)."""
    from scipy import stats

    y, p = _check(y, p, probability=True)
    _check_level(level)
    residual = y - p
    if groups is None:
        var = float((p * (1 - p)).sum())
    else:
        codes, n_groups = _group_codes(groups, len(y))
        var = float((np.bincount(codes, weights=residual, minlength=n_groups) ** 2).sum())
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(var) / p.sum()
    ratio = float(y.sum() / p.sum())
    return {"ratio": ratio, "lo": 1.0 - half, "hi": 1.0 + half, "inside": bool(abs(ratio - 1.0) <= half)}


def _chance_interval(n: np.ndarray, predicted: np.ndarray, var_sum: np.ndarray | None, level: float,
                     method: str) -> tuple[np.ndarray, np.ndarray]:
    """Where an observed rate falls with probability `level` if `predicted` is right (see calibration_table)."""
    from scipy import stats

    alpha = 1.0 - level
    if method == "binomial":
        return stats.binom.ppf(alpha / 2, n, predicted) / n, stats.binom.ppf(1 - alpha / 2, n, predicted) / n
    if method == "normal":
        sd = np.sqrt(var_sum) / n
        z = stats.norm.ppf(1 - alpha / 2)
        return np.clip(predicted - z * sd, 0.0, 1.0), np.clip(predicted + z * sd, 0.0, 1.0)
    raise MetricError(f"method must be 'binomial' or 'normal', got {method!r}")


# ------------------------------------------------------------------------------------------ bootstrap


class _AucBlocks:
    """One model's rows sorted by prediction, with their tie blocks, accounts and outcomes: what the compiled
    resample count (`validation.resampling`) passes over once for a few dozen resamples."""

    def __init__(self, y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int) -> None:
        from validation.resampling import rank_order

        ranks = dense_ranks_or_none(p)
        ranks = _dense_ranks(p) if ranks is None else ranks  # ranks already: counted into order, no sort
        order, self.starts = rank_order(ranks)
        self.accounts = codes[order].astype(np.int32 if n_groups < 2**31 else np.int64)
        self.bad = y[order] == 1
        self.n_blocks = len(self.starts) - 1

    def aucs(self, weights_t: np.ndarray) -> np.ndarray:
        """AUC of each resample; weights_t is (G x k): times each group was drawn in each resample."""
        from validation.resampling import resampled_aucs

        return resampled_aucs(self.starts, self.accounts, self.bad, _compact(weights_t))


def _dense_ranks(p: np.ndarray) -> np.ndarray:
    return np.unique(p, return_inverse=True)[1].astype(np.int64).ravel()


def _compact(counts: np.ndarray) -> np.ndarray:
    """Times drawn in the narrowest integer type that holds them, accounts in rows: a cache line then holds
    one account's weights for many resamples (a count above 255 is all but impossible, but kept exact)."""
    dtype = np.uint8 if counts.max(initial=0) < 256 else np.int64
    return np.ascontiguousarray(counts, dtype)


def _replicates(y: Any, ps: Sequence[Any], groups: Any, n_boot: int, seed: int) -> list[np.ndarray]:
    """AUC replicates of each model in `ps` on the same account-level resamples."""
    y = _check_y(y)
    ps = [_check_p(p, len(y), name=f"p[{i}]" if len(ps) > 1 else "p") for i, p in enumerate(ps)]
    _both_classes(y)
    if n_boot < 1:
        raise MetricError(f"n_boot must be at least 1, got {n_boot}")
    codes, n_groups = _group_codes(groups, len(y))
    models = [_AucBlocks(y, p, codes, n_groups) for p in ps]
    rng = np.random.default_rng(seed)
    chunk = int(max(1, min(n_boot, _DRAWS_HELD // n_groups)))
    batches = []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        # each resample draws n_groups accounts with replacement; weight = times drawn
        draws = rng.integers(0, n_groups, size=(k, n_groups))
        draws += (np.arange(k) * n_groups)[:, None]
        batches.append(_compact(np.bincount(draws.ravel(), minlength=k * n_groups).reshape(k, n_groups)))
    weights_t = _compact(np.concatenate(batches).T)  # accounts x resamples
    return [m.aucs(weights_t) for m in models]


def _finite(reps: np.ndarray, what: str) -> np.ndarray:
    ok = np.isfinite(reps)
    if ok.mean() < 0.9:  # a bad account absent from >10 % of resamples: about 2 or fewer bad accounts
        raise MetricError(
            f"{(~ok).sum()} of {len(reps)} bootstrap resamples drew accounts of one class only: too few accounts "
            f"with bads (or goods) to bootstrap {what}; validate on a larger sample"
        )
    if not ok.all():
        warnings.warn(
            f"{(~ok).sum()} of {len(reps)} bootstrap resamples had only one class and were left out of the {what} "
            "interval",
            RuntimeWarning,
            stacklevel=3,
        )
    return reps[ok]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise MetricError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")


def _percentile(reps: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_aucs(y: Any, p: Any, groups: Any = None, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """The AUC of each account-level bootstrap resample (NaN for a resample with one class only).

    groups: the account id of each row; all rows of a drawn account come along. None resamples rows.
    """
    return _replicates(y, [p], groups, n_boot, seed)[0]


def bootstrap_auc_ci(
    y: Any, p: Any, groups: Any = None, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the AUC from an account-level (cluster) bootstrap: (lo, hi)."""
    _check_level(level)
    return _percentile(_finite(bootstrap_aucs(y, p, groups, n_boot, seed), "AUC"), level)


def bootstrap_auc_diff_ci(
    y: Any, p_new: Any, p_old: Any, groups: Any = None, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of AUC(p_new) - AUC(p_old), both models scored on the same resamples (paired).

    An interval above 0 says the new model ranks better on this population beyond resampling noise.
    """
    _check_level(level)
    new, old = _replicates(y, [p_new, p_old], groups, n_boot, seed)
    return _percentile(_finite(new - old, "AUC difference"), level)


def bootstrap_auc_ratio_ci(
    y: Any, p: Any, q: Any, groups: Any = None, n_boot: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of AUC(p) / AUC(q) on the same account-level resamples (paired): a model against a
    benchmark such as the Bayes-optimal oracle."""
    _check_level(level)
    mine, theirs = _replicates(y, [p, q], groups, n_boot, seed)
    return _percentile(_finite(mine / theirs, "AUC ratio"), level)


# ---------------------------------------------------------------------------------------------- drift


def reference_distribution(x: Any, bins: int = 10) -> dict:
    """The distribution of a score or feature on the reference (training) sample, as plain JSON.

    Numeric x: interior cut points at the 1/bins .. (bins-1)/bins quantiles of the non-missing values
    (duplicates dropped, so a feature with many ties gets fewer bins); bin i holds edges[i-1] < x <= edges[i].
    Non-numeric x (strings, categories, booleans): one bin per category seen, plus one for unseen categories.
    Both store the share of rows per bin and the share missing.
    """
    if bins < 1:
        raise MetricError(f"bins must be at least 1, got {bins}")
    s = pd.Series(x) if not isinstance(x, pd.Series) else x
    if len(s) == 0:
        raise MetricError("the reference sample is empty: a reference distribution needs rows")
    missing = s.isna().to_numpy()
    n = len(s)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = s.to_numpy(dtype=float, na_value=np.nan)[~missing]
        if np.isinf(v).any():
            raise MetricError(f"the reference sample has infinite values in {_rows(np.isinf(v))}")
        edges = np.unique(np.quantile(v, np.arange(1, bins) / bins)) if len(v) else np.array([])
        counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": [float(c) / n for c in counts],
            "missing": float(missing.mean()),
            "n": int(n),
        }
    counts = s[~missing].astype(str).value_counts(sort=False).sort_index()
    return {
        "kind": "categorical",
        "categories": [str(c) for c in counts.index],
        "shares": [float(c) / n for c in counts.to_numpy()] + [0.0],  # last: categories unseen in reference
        "missing": float(missing.mean()),
        "n": int(n),
    }


def bin_counts(reference: dict, x: Any) -> np.ndarray:
    """Rows of x per bin of a stored reference distribution, the missing-value bin last.

    Counts add up: a batch job sums them over chunks and calls `psi_from_counts` once at the end.
    """
    s = pd.Series(x) if not isinstance(x, pd.Series) else x
    missing = s.isna().to_numpy()
    kind = reference.get("kind")
    if kind == "numeric":
        edges = np.asarray(reference["edges"], dtype=float)
        try:
            v = s.to_numpy(dtype=float, na_value=np.nan)[~missing]
        except (TypeError, ValueError):
            raise MetricError(f"the reference is numeric but x has dtype {s.dtype}") from None
        counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1)
    elif kind == "categorical":
        cats = pd.Index(reference["categories"])
        idx = cats.get_indexer(s[~missing].astype(str).to_numpy())
        idx[idx < 0] = len(cats)  # unseen category
        counts = np.bincount(idx, minlength=len(cats) + 1)
    else:
        raise MetricError(f"not a reference distribution (kind {kind!r}): build it with reference_distribution()")
    return np.append(counts, missing.sum()).astype(np.int64)


def _shares(reference: dict, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = counts.sum()
    if total == 0:
        raise MetricError("the sample to compare is empty")
    expected = np.append(np.asarray(reference["shares"], dtype=float), reference["missing"])
    return expected, counts / total


def psi_from_counts(reference: dict, counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """PSI from bin counts (see `bin_counts`): the same number `psi` gives on the rows themselves."""
    expected, actual = _shares(reference, np.asarray(counts))
    e = np.maximum(expected, eps)
    a = np.maximum(actual, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: dict, x: Any, eps: float = PSI_EPS) -> float:
    """Population stability index of x against a stored reference distribution.

    sum over bins (actual - expected) * ln(actual / expected), the bins being the reference's plus one for
    missing values; an empty bin on either side counts as share `eps`. Called on a feature, this is its CSI.
    """
    return psi_from_counts(reference, bin_counts(reference, x), eps)


def drift_level(value: float) -> str:
    """'stable' below 0.1, 'warning' from 0.1 to 0.25, 'alert' above 0.25 (the conventional PSI bands)."""
    if value is None or not math.isfinite(value) or value < 0:
        raise MetricError(f"a PSI is a finite non-negative number, got {value}")
    low, high = DRIFT_THRESHOLDS
    if value < low:
        return "stable"
    return "warning" if value <= high else "alert"


def training_range(x: Any) -> list[float] | None:
    """[lowest, highest] of the non-missing values of x (what a one-value-per-date feature took over the
    training rows), as plain JSON; None when every value is missing."""
    v = pd.Series(x).to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(v).any():
        raise MetricError(f"the training sample has infinite values in {_rows(np.isinf(v))}")
    v = v[~np.isnan(v)]
    return [float(v.min()), float(v.max())] if len(v) else None


def outside(value: float, training: list[float]) -> float:
    """How far value lies outside the training range [lo, hi] (0 inside it)."""
    lo, hi = training
    return max(lo - value, value - hi, 0.0)


def range_level(value: float, training: list[float], margin: float = RANGE_MARGIN) -> str:
    """'stable' inside the training range [lo, hi], 'warning' outside it by at most margin x (hi - lo),
    'alert' beyond that (see RANGE_MARGIN). A range of one value (the indicator never moved in training)
    alerts on any other."""
    if value is None or not math.isfinite(value):
        raise MetricError(f"a value to hold against the training range is a finite number, got {value}")
    lo, hi = training
    if not lo <= hi:
        raise MetricError(f"a training range is [lowest, highest], got [{lo}, {hi}]")
    gap = outside(value, training)
    if gap == 0:
        return "stable"
    return "warning" if gap <= margin * (hi - lo) else "alert"


# ---------------------------------------------------------------------------------------------- summary


def metric_set(
    y: Any, p: Any, groups: Any = None, n_boot: int = 200, seed: int = 0, level: float = 0.95, bins: int = 10
) -> dict[str, float]:
    """All scalar metrics in one flat dict of floats (ready for mlflow.log_metrics).

    Keys: n, bad_rate, mean_p, oe_ratio (observed / expected: bad_rate / mean_p, calibration in the large),
    auc, gini, ks, brier, log_loss, ece; with groups also n_groups, auc_lo, auc_hi, gini_lo, gini_hi
    (account-level bootstrap, `level` interval).
    """
    y, p = _check(y, p, probability=True)
    _both_classes(y)
    a = _auc_sorted(y, p)
    _, f_bad, f_good = _cdf_steps(y, p)
    out = {
        "n": float(len(y)),
        "bad_rate": float(y.mean()),
        "mean_p": float(p.mean()),
        "oe_ratio": float(y.mean() / p.mean()) if p.mean() > 0 else math.nan,
        "auc": a,
        "gini": 2 * a - 1,
        "ks": float(np.max(np.abs(f_bad - f_good))),
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "ece": ece(y, p, bins),
    }
    if groups is not None:
        _, n_groups = _group_codes(groups, len(y))
        lo, hi = bootstrap_auc_ci(y, p, groups, n_boot=n_boot, seed=seed, level=level)
        out.update(n_groups=float(n_groups), auc_lo=lo, auc_hi=hi, gini_lo=2 * lo - 1, gini_hi=2 * hi - 1)
    return out
