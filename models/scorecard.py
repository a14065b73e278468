"""The benchmark scorecard: weight-of-evidence bins and a logistic regression, trained beside LightGBM.

It exists so that every LightGBM score has a transparent yardstick: a model a credit committee can read
bin by bin, whose points add up to the score, and whose gap to LightGBM says what the trees buy.

Conventions, used throughout:
- `y = 1` is a *bad* (the target happened), `y = 0` a *good*.
- WOE of a bin = ln(%good / %bad), with %good = the bin's share of all goods (likewise %bad). Positive WOE
  is safer than average, negative riskier. Counts are smoothed by `WOE_SMOOTHING` (0.5 per class in each
  non-empty bin, the missing bin included), so a bin with no bads still has a finite WOE; a bin with no
  rows at all (e.g. the missing bin when training had no missing values) has WOE 0: it says nothing.
- IV = sum over bins of (%good - %bad) * WOE, on the same smoothed shares.
- Bins are right-open: `edges` are the interior cut points e1 < e2 < ... and the bins are
  (-inf, e1), [e1, e2), ..., [ek, inf). Missing values (NaN, None, pd.NA) have their own bin, last.
- A feature's *direction* is the catalog's risk sign: +1 means the bad rate does not fall as the value
  rises, -1 that it does not rise. Declared directions are imposed; undeclared ones (absent or 0) are
  chosen from the data (the direction whose monotone binning has the larger IV) and recorded.
- Score = offset + factor * ln(good:bad odds), factor = pdo / ln 2, offset = base_score - factor *
  ln(base_odds), clipped to 350..950. Points per bin add up (with an equal share of the intercept in each
  feature) to the unclipped score.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from models.scale import ScoreScale

__all__ = ["MISSING", "SCORE_MAX", "SCORE_MIN", "WOE_SMOOTHING", "BenchmarkScorecard", "FeatureBins",
           "WoeBinner"]

WOE_SMOOTHING = 0.5
SCORE_MIN, SCORE_MAX = 350.0, 950.0
MISSING = "Missing"
_FORMAT = "dynascore.benchmark_scorecard"
_FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------------------
# Checks that speak to the user
# ---------------------------------------------------------------------------------------------------------

def _check_int(owner: str, name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")


def _check_real(owner: str, name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{owner}: {name} must be a finite number in {interval}, got {value!r}")


def _declared_directions(owner: str, monotone) -> dict[str, int]:
    """`monotone` as {column: -1 | 0 | +1}. Accepts a mapping or a features.catalog.Catalog."""
    if monotone is None:
        return {}
    if isinstance(monotone, Mapping):
        items = dict(monotone)
    elif hasattr(monotone, "features"):  # a Catalog: its declared risk signs
        items = {f.name: f.risk for f in monotone.features}
    else:
        raise TypeError(f"{owner}: monotone must be a mapping column -> -1/0/+1 or a feature Catalog, "
                        f"got {type(monotone).__name__}")
    wrong = {k: v for k, v in items.items() if isinstance(v, bool) or v not in (-1, 0, 1)}
    if wrong:
        sample = ", ".join(f"{k}={v!r}" for k, v in list(wrong.items())[:5])
        raise ValueError(f"{owner}: monotone directions must be -1, 0 or +1; got {sample}")
    return {str(k): int(v) for k, v in items.items()}


def _as_frame(owner: str, X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    elif hasattr(X, "tocsr") or hasattr(X, "sparse"):
        raise TypeError(f"{owner}: sparse input is not supported: pass a DataFrame of numeric columns")
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"{owner}: X must be a DataFrame (or a 2-D array), got an array of shape {arr.shape}")
        frame = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
    if frame.shape[1] == 0:
        raise ValueError(f"{owner}: X has 0 feature(s) (shape={frame.shape}) while a minimum of 1 is required: "
                         f"pass the feature table (one numeric column per feature)")
    if frame.shape[0] == 0:
        raise ValueError(f"{owner}: X has no rows ({frame.shape[1]} columns): nothing to bin or score")
    bad_names = [c for c in frame.columns if not isinstance(c, str)]
    if bad_names:
        raise ValueError(f"{owner}: column names must be strings, got {bad_names[:5]!r}")
    if frame.columns.has_duplicates:
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise ValueError(f"{owner}: X has duplicate columns {dup[:5]}: each feature must appear once")
    return frame


def _check_numeric(owner: str, frame: pd.DataFrame, columns) -> None:
    complex_ = [c for c in columns if pd.api.types.is_complex_dtype(frame[c].dtype)]
    if complex_:
        raise ValueError(f"{owner}: Complex data not supported (columns {complex_[:5]}): pass real numbers")
    wrong = [(c, str(frame[c].dtype)) for c in columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)]
    if wrong:
        sample = ", ".join(f"{c} ({d})" for c, d in wrong[:5])
        more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        raise ValueError(f"{owner}: {len(wrong)} non-numeric column(s): {sample}{more}. The binner takes numbers "
                         f"only: encode categories as numbers (or WOE) upstream, or drop these columns")


def _column(frame: pd.DataFrame, c: str) -> np.ndarray:
    return frame[c].to_numpy(dtype=np.float64, na_value=np.nan)


def _check_target(owner: str, y, n_rows: int) -> np.ndarray:
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None: 1 = bad, 0 = good")
    arr = y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{owner}: y must be one column of labels (1 = bad, 0 = good), got shape {arr.shape}")
    s = pd.Series(arr, copy=False)
    if len(s) != n_rows:
        raise ValueError(f"{owner}: y has {len(s)} values but X has {n_rows} rows")
    if s.isna().any():
        raise ValueError(f"{owner}: y has {int(s.isna().sum())} missing labels (e.g. rows "
                         f"{list(np.flatnonzero(s.isna().to_numpy())[:3])}): drop unlabelled rows before fitting")
    try:
        values = s.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: y must hold 0 (good) and 1 (bad), got dtype {s.dtype}") from None
    odd = ~np.isin(values, (0.0, 1.0))
    if odd.any():
        raise ValueError(f"{owner}: y must hold 0 (good) and 1 (bad); found {sorted(set(values[odd][:5]))} "
                         f"in {int(odd.sum())} rows")
    n_bad = int(values.sum())
    if n_bad in (0, n_rows):
        only = "bads (1)" if n_bad else "goods (0)"
        raise ValueError(f"{owner}: y holds only {only} in all {n_rows} rows: WOE and a logistic regression need "
                         f"both classes; check the target window and the population filter")
    return values.astype(np.int8)


# ---------------------------------------------------------------------------------------------------------
# One feature's bins
# ---------------------------------------------------------------------------------------------------------

def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _woe_iv(goods: np.ndarray, bads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed WOE and IV contribution per slot; empty slots get 0 and take no share of the smoothing."""
    occupied = (goods + bads) > 0
    k = int(occupied.sum())
    g = np.where(occupied, goods + WOE_SMOOTHING, 0.0)
    b = np.where(occupied, bads + WOE_SMOOTHING, 0.0)
    pg = g / (goods.sum() + WOE_SMOOTHING * k)
    pb = b / (bads.sum() + WOE_SMOOTHING * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        woe = np.where(occupied, np.log(pg / pb), 0.0)
    return woe, (pg - pb) * woe


@dataclass(frozen=True, eq=False)
class FeatureBins:
    """One feature's fitted bins. `goods`, `bads` and `woe` have one slot per bin plus the missing bin, last."""

    edges: np.ndarray
    goods: np.ndarray
    bads: np.ndarray
    woe: np.ndarray
    iv: float
    direction: int
    declared: bool

    @property
    def n_bins(self) -> int:
        """Bins for non-missing values (the missing bin not counted)."""
        return len(self.edges) + 1

    def labels(self) -> list[str]:
        e = [_fmt(v) for v in self.edges]
        if not e:
            return ["(-inf, inf)", MISSING]
        return [f"(-inf, {e[0]})", *(f"[{a}, {b})" for a, b in pairwise(e)),
                f"[{e[-1]}, inf)", MISSING]

    def slots(self, x: np.ndarray) -> np.ndarray:
        """Bin index per value: 0..n_bins-1 for values, n_bins for missing. Vectorised."""
        return _slots(self.edges, x)

    def to_dict(self) -> dict:
        return {"edges": [float(v) for v in self.edges], "goods": [int(v) for v in self.goods],
                "bads": [int(v) for v in self.bads], "woe": [float(v) for v in self.woe], "iv": float(self.iv),
                "direction": int(self.direction), "declared": bool(self.declared)}

    @classmethod
    def from_dict(cls, d: Mapping) -> FeatureBins:
        return cls(np.asarray(d["edges"], dtype=np.float64), np.asarray(d["goods"], dtype=np.int64),
                   np.asarray(d["bads"], dtype=np.int64), np.asarray(d["woe"], dtype=np.float64), float(d["iv"]),
                   int(d["direction"]), bool(d["declared"]))


def _slots(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin index per value (the number of edges <= x, as searchsorted(side="right")), missing -> len(edges) + 1.

    A few vectorised comparisons beat a binary search per row when there are a few dozen edges or fewer."""
    if len(edges) > 32:
        idx = np.searchsorted(edges, x, side="right")
    else:
        idx = np.zeros(len(x), dtype=np.uint8)
        for e in edges:
            idx += x >= e  # NaN compares False
    idx[np.isnan(x)] = len(edges) + 1
    return idx


def _prebin_edges(x_sorted: np.ndarray, n_prebins: int) -> np.ndarray:
    """Quantile cut points taken from the data (inverted CDF), unique, finite, above the minimum."""
    n = len(x_sorted)
    q = np.arange(1, n_prebins) / n_prebins
    cand = x_sorted[np.ceil(q * n).astype(np.int64) - 1]
    cand = np.unique(cand[np.isfinite(cand)])
    return cand[cand > x_sorted[0]]


def _merged(edges: np.ndarray, g: np.ndarray, b: np.ndarray, i: int):
    """Merge bin i with bin i + 1."""
    g2, b2 = g.copy(), b.copy()
    g2[i] += g2[i + 1]
    b2[i] += b2[i + 1]
    return np.delete(edges, i), np.delete(g2, i + 1), np.delete(b2, i + 1)


def _closer_neighbour(g: np.ndarray, b: np.ndarray, i: int) -> int:
    """Which pair to merge bin i into: returns the left index of the pair (i - 1 or i)."""
    if i == 0:
        return 0
    if i == len(g) - 1:
        return i - 1
    rate = b / np.maximum(g + b, 1)
    left, right = abs(rate[i] - rate[i - 1]), abs(rate[i + 1] - rate[i])
    if left != right:
        return i - 1 if left < right else i
    return i - 1 if g[i - 1] + b[i - 1] <= g[i + 1] + b[i + 1] else i


def _monotone_bins(edges, g, b, direction: int, max_bins: int, min_count: float):
    """Merge adjacent bins until: the bad rate is strictly monotone in `direction`, every bin holds at
    least `min_count` rows and both classes, and there are at most `max_bins` bins."""
    # (1) Pool adjacent violators: ties pooled too, so the result is strictly monotone. Any merge of two
    # neighbours in a strictly monotone sequence keeps it strictly monotone, so the later steps keep it.
    while len(g) > 1:
        n = g + b
        # direction +1 needs rate[i] < rate[i+1]; cross-multiplied: b[i]*n[i+1] < b[i+1]*n[i]
        lhs, rhs = b[:-1] * n[1:], b[1:] * n[:-1]
        bad = np.flatnonzero(lhs >= rhs if direction > 0 else lhs <= rhs)
        if not len(bad):
            break
        edges, g, b = _merged(edges, g, b, int(bad[0]))
    # (2) minimum share, then (3) both classes: merge the weakest bin into its closer neighbour.
    while len(g) > 1:
        n = g + b
        i = int(np.argmin(n))
        if n[i] >= min_count:
            break
        edges, g, b = _merged(edges, g, b, _closer_neighbour(g, b, i))
    while len(g) > 1:
        pure = np.flatnonzero((g == 0) | (b == 0))
        if not len(pure):
            break
        edges, g, b = _merged(edges, g, b, _closer_neighbour(g, b, int(pure[0])))
    # (4) at most max_bins: merge the neighbours whose merge loses the least IV.
    while len(g) > max_bins:
        _, iv = _woe_iv(g.astype(np.float64), b.astype(np.float64))
        losses = []
        for i in range(len(g) - 1):
            _, iv2 = _woe_iv(np.r_[g[:i], g[i] + g[i + 1], g[i + 2:]].astype(np.float64),
                             np.r_[b[:i], b[i] + b[i + 1], b[i + 2:]].astype(np.float64))
            losses.append(iv.sum() - iv2.sum())
        edges, g, b = _merged(edges, g, b, int(np.argmin(losses)))
    return edges, g, b


def _fit_column(x: np.ndarray, y: np.ndarray, declared: int, max_bins: int, min_bin_share: float,
                n_prebins: int) -> FeatureBins:
    missing = np.isnan(x)
    n_missing = int(missing.sum())
    n_values = len(x) - n_missing
    x_sorted = np.sort(x)[:n_values]  # NaN sorts last
    edges = _prebin_edges(x_sorted, n_prebins) if n_values else np.empty(0)
    slot = _slots(edges, x)
    total = np.bincount(slot, minlength=len(edges) + 2)
    bads = np.bincount(slot, weights=y, minlength=len(edges) + 2).astype(np.int64)
    goods = total - bads
    g, b = goods[:-1], bads[:-1]
    min_count = min_bin_share * n_values
    candidates = [declared] if declared else [+1, -1]
    best = None
    for direction in candidates:
        e2, g2, b2 = _monotone_bins(edges, g, b, direction, max_bins, min_count)
        g_all, b_all = np.r_[g2, goods[-1]], np.r_[b2, bads[-1]]
        woe, iv = _woe_iv(g_all.astype(np.float64), b_all.astype(np.float64))
        fb = FeatureBins(e2.astype(np.float64), g_all, b_all, woe, float(iv.sum()), direction, bool(declared))
        if best is None or fb.iv > best.iv + 1e-12:
            best = fb
    return best


# ---------------------------------------------------------------------------------------------------------
# The binner
# ---------------------------------------------------------------------------------------------------------

class WoeBinner(TransformerMixin, BaseEstimator):
    """Monotone weight-of-evidence binning of numeric columns; transform returns WOE values.

    Per column: quantile pre-bins (cut points taken from the data, duplicates dropped), then adjacent bins
    are merged until the bad rate is strictly monotone in the column's direction, each bin holds at least
    `min_bin_share` of the column's non-missing rows and both classes, and at most `max_bins` bins remain
    (the missing bin is extra). WOE = ln(%good / %bad): positive is safer. See the module docstring.

    Parameters
    ----------
    max_bins : int >= 2 -- bins for non-missing values, at most
    min_bin_share : float in (0, 0.5] -- each bin's least share of the column's non-missing rows
    monotone : mapping column -> +1 / -1 / 0, or a features.catalog.Catalog, optional -- +1: the bad rate
        does not fall as the value rises; -1: does not rise; 0 or absent: chosen from the data (the direction
        with the larger IV) and recorded in `directions_`. Entries for columns not in X are ignored.
    special_missing : bool -- missing values get their own bin (WOE from its own smoothed counts; 0 when
        training had none). False refuses missing values.
    n_prebins : int >= 2 -- quantile pre-bins before merging

    Attributes
    ----------
    bins_ : dict column -> FeatureBins
    information_values_ : Series, IV per column, sorted descending
    directions_ : Series, the direction used per column (+1 / -1)
    """

    def __init__(self, max_bins: int = 8, min_bin_share: float = 0.05, monotone=None,
                 special_missing: bool = True, n_prebins: int = 20):
        self.max_bins = max_bins
        self.min_bin_share = min_bin_share
        self.monotone = monotone
        self.special_missing = special_missing
        self.n_prebins = n_prebins

    def _validate_params(self) -> dict[str, int]:
        owner = type(self).__name__
        _check_int(owner, "max_bins", self.max_bins, 2)
        _check_real(owner, "min_bin_share", self.min_bin_share, 0.0, 0.5, low_open=True)
        _check_int(owner, "n_prebins", self.n_prebins, 2)
        if not isinstance(self.special_missing, bool | np.bool_):
            raise ValueError(f"{owner}: special_missing must be True or False, got {self.special_missing!r}")
        return _declared_directions(owner, self.monotone)

    def _refuse_missing(self, frame: pd.DataFrame, columns) -> None:
        if self.special_missing:
            return
        counts = {c: int(frame[c].isna().sum()) for c in columns}
        counts = {c: n for c, n in counts.items() if n}
        if counts:
            sample = ", ".join(f"{c} ({n:,} rows)" for c, n in list(counts.items())[:5])
            raise ValueError(f"{type(self).__name__}: missing values in {sample} but special_missing=False: "
                             f"impute them upstream, or set special_missing=True to give them their own bin")

    def fit(self, X, y) -> WoeBinner:
        owner = type(self).__name__
        declared = self._validate_params()
        frame = _as_frame(owner, X)
        _check_numeric(owner, frame, frame.columns)
        self._refuse_missing(frame, frame.columns)
        target = _check_target(owner, y, len(frame)).astype(np.float64)
        self.bins_ = {c: _fit_column(_column(frame, c), target, declared.get(c, 0), self.max_bins,
                                     self.min_bin_share, self.n_prebins) for c in frame.columns}
        self._set_fitted(list(frame.columns))
        return self

    def _set_fitted(self, columns: list[str]) -> None:
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        iv = pd.Series({c: self.bins_[c].iv for c in columns}, name="iv", dtype=np.float64)
        self.information_values_ = iv.sort_values(ascending=False, kind="stable")
        self.directions_ = pd.Series({c: self.bins_[c].direction for c in columns}, name="direction",
                                     dtype=np.int64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "bins_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first")

    def woe_matrix(self, X, columns=None) -> np.ndarray:
        """WOE of `columns` (default: all fitted) as a float64 array (n_rows, n_columns)."""
        self._check_fitted()
        owner = type(self).__name__
        columns = list(self.feature_names_in_) if columns is None else list(columns)
        frame = _as_frame(owner, X)
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise ValueError(f"{owner}: X lacks {len(absent)} fitted column(s): {absent[:5]}; pass the columns the "
                             f"binner was fitted on")
        unknown = [c for c in columns if c not in self.bins_]
        if unknown:
            raise ValueError(f"{owner}: no bins for {unknown[:5]}: the binner was not fitted on them")
        _check_numeric(owner, frame, columns)
        self._refuse_missing(frame, columns)
        out = np.empty((len(frame), len(columns)), dtype=np.float64, order="F")  # column writes stay contiguous
        for j, c in enumerate(columns):
            fb = self.bins_[c]
            out[:, j] = fb.woe[fb.slots(_column(frame, c))]
        return out

    def transform(self, X) -> pd.DataFrame:
        """WOE values, same columns (the fitted ones, in fit order) and index as X."""
        self._check_fitted()
        frame = _as_frame(type(self).__name__, X)
        columns = list(self.feature_names_in_)
        return pd.DataFrame(self.woe_matrix(frame, columns), columns=columns, index=frame.index, copy=False)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.feature_names_in_, dtype=object)

    def binning_table(self, column: str) -> pd.DataFrame:
        """Per bin (the missing bin last, then a Totals row): count, share of all rows, goods, bads, bad rate,
        WOE and IV contribution."""
        self._check_fitted()
        if column not in self.bins_:
            raise KeyError(f"no binning for {column!r}; fitted columns: {', '.join(self.feature_names_in_[:10])}")
        fb = self.bins_[column]
        count = fb.goods + fb.bads
        _, iv = _woe_iv(fb.goods.astype(np.float64), fb.bads.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            bad_rate = np.where(count > 0, fb.bads / np.maximum(count, 1), np.nan)
        table = pd.DataFrame({"bin": fb.labels(), "count": count, "share": count / count.sum(), "goods": fb.goods,
                              "bads": fb.bads, "bad_rate": bad_rate, "woe": fb.woe, "iv": iv})
        totals = pd.DataFrame({"bin": ["Totals"], "count": [count.sum()], "share": [1.0], "goods": [fb.goods.sum()],
                               "bads": [fb.bads.sum()], "bad_rate": [fb.bads.sum() / count.sum()],
                               "woe": [np.nan], "iv": [iv.sum()]})
        return pd.concat([table, totals], ignore_index=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True
        return tags

    def to_dict(self) -> dict:
        """Fitted state as plain JSON types (no pickle)."""
        self._check_fitted()
        params = self.get_params()
        params["monotone"] = _declared_directions(type(self).__name__, self.monotone) or None
        return {"params": params, "columns": [str(c) for c in self.feature_names_in_],
                "bins": {c: self.bins_[c].to_dict() for c in self.feature_names_in_}}

    @classmethod
    def from_dict(cls, d: Mapping) -> WoeBinner:
        binner = cls(**d["params"])
        binner.bins_ = {c: FeatureBins.from_dict(d["bins"][c]) for c in d["columns"]}
        binner._set_fitted(list(d["columns"]))
        return binner


# ---------------------------------------------------------------------------------------------------------
# The scorecard
# ---------------------------------------------------------------------------------------------------------

class BenchmarkScorecard(ClassifierMixin, BaseEstimator):
    """Logistic regression on monotone WOE bins, with a points table on the consumer score scale.

    fit: bin every column (WoeBinner), keep those with IV >= `min_iv`, walk them by IV (highest first) and
    skip one whose training WOE correlates with an already kept one by |r| > `max_corr` (None: no check),
    stop at `max_features`; fit an L2 logistic regression (lbfgs, deterministic) on the WOE values.

    Parameters
    ----------
    max_features : int >= 1
    min_iv : float >= 0
    max_corr : float in (0, 1], or None
    C : float > 0 -- inverse L2 strength of the logistic regression
    pdo, base_score, base_odds : the score scale: `base_score` points at good:bad odds `base_odds`, and
        `pdo` more points each time the odds double
    max_bins, min_bin_share, monotone, special_missing, n_prebins : WoeBinner's

    Attributes
    ----------
    binner_ : WoeBinner fitted on all columns
    features_ : list of the selected columns, by IV
    coef_ : array (n_features,), intercept_ : float -- the logit of P(bad) = intercept_ + WOE @ coef_
    dropped_ : dict column -> why it was left out
    classes_ : array([0, 1])
    """

    def __init__(self, *, max_features: int = 15, min_iv: float = 0.02, max_corr: float | None = 0.8, C: float = 1.0,
                 pdo: float = 40.0, base_score: float = 600.0, base_odds: float = 50.0, max_bins: int = 8,
                 min_bin_share: float = 0.05, monotone=None, special_missing: bool = True, n_prebins: int = 20):
        self.max_features = max_features
        self.min_iv = min_iv
        self.max_corr = max_corr
        self.C = C
        self.pdo = pdo
        self.base_score = base_score
        self.base_odds = base_odds
        self.max_bins = max_bins
        self.min_bin_share = min_bin_share
        self.monotone = monotone
        self.special_missing = special_missing
        self.n_prebins = n_prebins

    # -- parameters and the scale ------------------------------------------------------------------------
    def _validate_params(self) -> None:
        owner = type(self).__name__
        _check_int(owner, "max_features", self.max_features, 1)
        _check_real(owner, "min_iv", self.min_iv, 0.0)
        if self.max_corr is not None:
            _check_real(owner, "max_corr", self.max_corr, 0.0, 1.0, low_open=True)
        _check_real(owner, "C", self.C, 0.0, low_open=True)
        _check_real(owner, "pdo", self.pdo, 0.0, low_open=True)
        _check_real(owner, "base_score", self.base_score)
        _check_real(owner, "base_odds", self.base_odds, 0.0, low_open=True)

    def _binner(self) -> WoeBinner:
        return WoeBinner(max_bins=self.max_bins, min_bin_share=self.min_bin_share, monotone=self.monotone,
                         special_missing=self.special_missing, n_prebins=self.n_prebins)

    @property
    def scale(self) -> ScoreScale:
        """The same score scale as the LightGBM models' (models/scale.py), with this scorecard's settings."""
        return ScoreScale(self.base_score, self.base_odds, self.pdo, SCORE_MIN, SCORE_MAX)

    @property
    def factor(self) -> float:
        return self.scale.factor

    @property
    def offset(self) -> float:
        return self.scale.offset

    # -- fit ---------------------------------------------------------------------------------------------
    def fit(self, X, y) -> BenchmarkScorecard:
        owner = type(self).__name__
        self._validate_params()
        frame = _as_frame(owner, X)
        target = _check_target(owner, y, len(frame))
        binner = self._binner().fit(frame, target)
        iv = binner.information_values_
        candidates = list(iv.index[iv >= self.min_iv])
        dropped = {c: f"IV {iv[c]:.4f} < min_iv {self.min_iv}" for c in iv.index[iv < self.min_iv]}
        if not candidates:
            raise ValueError(f"{owner}: no column has IV >= min_iv={self.min_iv} (best: {iv.index[0]} with "
                             f"{iv.iloc[0]:.4f}): lower min_iv, or check the target and the features")
        kept: list[str] = []
        kept_w: list[tuple[np.ndarray, float, float]] = []  # WOE column, mean, standard deviation
        n = len(frame)
        for c in candidates:
            if len(kept) == self.max_features:
                dropped[c] = f"beyond max_features={self.max_features}"
                continue
            w = binner.woe_matrix(frame, [c])[:, 0]
            mean, sd = float(w.mean()), float(w.std())
            if sd == 0:
                dropped[c] = "one bin only: constant WOE"
                continue
            if self.max_corr is not None and kept_w:
                r = np.array([(w @ wk / n - mean * mk) / (sd * sk) for wk, mk, sk in kept_w])
                worst = int(np.argmax(np.abs(r)))
                if abs(r[worst]) > self.max_corr:
                    dropped[c] = f"WOE correlation {r[worst]:+.2f} with {kept[worst]} (higher IV)"
                    continue
            kept.append(c)
            kept_w.append((w, mean, sd))
        if not kept:
            raise ValueError(f"{owner}: every column with IV >= min_iv={self.min_iv} has a single bin (constant WOE): "
                             f"nothing to fit; check the features and the target")
        W = np.column_stack([wk for wk, _, _ in kept_w])
        del kept_w
        model = LogisticRegression(C=self.C, solver="lbfgs", max_iter=1000, tol=1e-8)
        model.fit(W, target)
        self.binner_ = binner
        self.features_ = kept
        self.dropped_ = dropped
        self.model_ = model
        self.coef_ = model.coef_[0].astype(np.float64).copy()
        self.intercept_ = float(model.intercept_[0])
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first")

    # -- predictions -------------------------------------------------------------------------------------
    def decision_function(self, X) -> np.ndarray:
        """ln odds of bad: intercept_ + WOE @ coef_. Needs only the selected columns in X."""
        self._check_fitted()
        return self.binner_.woe_matrix(X, self.features_) @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2): P(good), P(bad)."""
        p_bad = expit(self.decision_function(X))
        return np.column_stack([1.0 - p_bad, p_bad])

    def predict(self, X) -> np.ndarray:
        """1 (bad) where P(bad) > 0.5. Scorecards are used through scores and cut-offs; this is for sklearn."""
        self._check_fitted()
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]

    def predict_score(self, X, clip: bool = True) -> np.ndarray:
        """Points: offset + factor * ln(good:bad odds), clipped to SCORE_MIN..SCORE_MAX unless clip=False."""
        score = self.offset - self.factor * self.decision_function(X)
        return np.clip(score, SCORE_MIN, SCORE_MAX) if clip else score

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- tables ------------------------------------------------------------------------------------------
    def _base_points(self) -> float:
        """Each feature's equal share of the intercept's points."""
        return (self.offset - self.factor * self.intercept_) / len(self.features_)

    def points_table(self) -> pd.DataFrame:
        """One row per selected feature and bin (missing bin included): WOE and points. A row's points summed
        over the features equal its unclipped score; each bin carries an equal share of the intercept."""
        self._check_fitted()
        base = self._base_points()
        rows = []
        for c, coef in zip(self.features_, self.coef_, strict=True):
            fb = self.binner_.bins_[c]
            rows.append(pd.DataFrame({"feature": c, "bin": fb.labels(), "woe": fb.woe,
                                      "points": base - self.factor * coef * fb.woe}))
        return pd.concat(rows, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per selected feature: IV, direction, bins, coefficient, points range, and a warning when the
        coefficient's sign breaks the WOE direction (it should be negative: higher WOE, fewer bads)."""
        self._check_fitted()
        pts = self.points_table().groupby("feature", sort=False)["points"]
        rows = []
        for c, coef in zip(self.features_, self.coef_, strict=True):
            fb = self.binner_.bins_[c]
            warn = ("coefficient > 0: points run against the feature's WOE direction (collinear with another "
                    "feature?)") if coef > 0 else ""
            rows.append({"feature": c, "iv": fb.iv, "direction": fb.direction,
                         "direction_source": "declared" if fb.declared else "chosen", "bins": fb.n_bins,
                         "coefficient": float(coef), "points_min": pts.get_group(c).min(),
                         "points_max": pts.get_group(c).max(), "warning": warn})
        return pd.DataFrame(rows)

    # -- persistence -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Fitted state as plain JSON types (no pickle); `from_dict` reproduces predict_proba exactly."""
        self._check_fitted()
        params = self.get_params()
        params["monotone"] = _declared_directions(type(self).__name__, self.monotone) or None
        return {"format": _FORMAT, "format_version": _FORMAT_VERSION, "params": params,
                "columns": [str(c) for c in self.feature_names_in_], "binner": self.binner_.to_dict(),
                "features": list(self.features_), "coef": [float(v) for v in self.coef_],
                "intercept": float(self.intercept_), "dropped": dict(self.dropped_)}

    @classmethod
    def from_dict(cls, d: Mapping) -> BenchmarkScorecard:
        if d.get("format") != _FORMAT or d.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"not a benchmark scorecard of format {_FORMAT} v{_FORMAT_VERSION}: got "
                             f"{d.get('format')!r} v{d.get('format_version')!r}")
        card = cls(**d["params"])
        card.binner_ = WoeBinner.from_dict(d["binner"])
        card.features_ = list(d["features"])
        card.coef_ = np.asarray(d["coef"], dtype=np.float64)
        card.intercept_ = float(d["intercept"])
        card.dropped_ = dict(d["dropped"])
        card.classes_ = np.array([0, 1])
        card.feature_names_in_ = np.asarray(d["columns"], dtype=object)
        card.n_features_in_ = len(d["columns"])
        return card
