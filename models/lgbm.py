"""LightGBM for one target: monotone constraints from the catalog, early stopping on the validation slice.

Deterministic by construction: row-wise histograms, `deterministic=True`, a fixed thread count and seeds,
no bagging unless asked; the same panel, parameters and seed give a byte-identical model text. Depth is
bounded so TreeSHAP reason codes stay cheap at scoring time.

The panel is binned once, straight from its (features x rows) array, on bin edges from training rows
only (`panel_dataset`); each target's slices are subsets of it: no slice is copied out as a float matrix,
and nothing of a later slice shapes the model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from features.panel import Panel

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": 6,
    "min_data_in_leaf": 200,  # for small training slices, see leaf_rows
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "monotone_constraints_method": "intermediate",  # "advanced" fits a little closer at several times the cost
}
# feature_pre_filter off: one binned slice serves every tuning trial, whatever its min_data_in_leaf
FIXED = {"deterministic": True, "force_row_wise": True, "verbosity": -1, "num_threads": 2,
         "feature_pre_filter": False}
BIN_SAMPLE = 200_000  # rows the bin edges are found on (LightGBM's own bin_construct_sample_cnt)
LEAF_ALIASES = ("min_data_in_leaf", "min_data_per_leaf", "min_data", "min_child_samples", "min_samples_leaf")


@dataclass
class FitResult:
    booster: lgb.Booster  # trimmed to the best iteration
    best_iteration: int
    params: dict
    valid_metric: str  # the validation metric early stopping read (binary_logloss unless the parameters say)
    valid_loss: float  # its best value, as a loss (negated when higher is better)


def lgb_params(monotone: list[int], seed: int, overrides: dict | None = None, train_rows: int | None = None) -> dict:
    """The parameters of one fit: defaults, then `overrides`, then the fixed determinism settings.
    With `train_rows`, a leaf's least size follows the training slice (`leaf_rows`) unless overridden."""
    overrides = overrides or {}
    params = {**DEFAULT_PARAMS, **overrides, **FIXED, "seed": seed, "monotone_constraints": list(monotone)}
    params.update({"bagging_seed": seed, "feature_fraction_seed": seed, "data_random_seed": seed})
    set_leaf = [k for k in LEAF_ALIASES if k in overrides]
    if set_leaf and "min_data_in_leaf" not in set_leaf:
        del params["min_data_in_leaf"]  # the caller's alias alone, not two values LightGBM must choose between
    elif not set_leaf and train_rows is not None:
        params["min_data_in_leaf"] = leaf_rows(train_rows)
    return params


def leaf_rows(train_rows: int) -> int:
    """Least rows per leaf: 200 on large slices, one per mille of the rows on small ones (at least 20).

    200 steadies the leaves of the million-row targets, but on the self-cure slice (34 k rows, bads in the
    hundreds) it starves them: at 200 the out-of-time AUC was 0.666 / 0.687 on two synthetic worlds (seeds
    1 and 2, 0.908 / 0.906 of the oracle), at 34 it was 0.700 / 0.714 (0.955 / 0.942), and the validation
    log loss -- what the choice may look at -- fell with it (0.167 -> 0.153, 0.156 -> 0.152)."""
    return int(min(DEFAULT_PARAMS["min_data_in_leaf"], max(20, train_rows // 1000)))


def matrix(X) -> np.ndarray:
    """A float64 array of X (a frame or an array): no copy when it already is one."""
    return X.to_numpy(np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=np.float64)


def dataset(X, y=None, reference: lgb.Dataset | None = None, feature_names: list[str] | None = None,
            params: dict | None = None) -> lgb.Dataset:
    names = list(X.columns) if isinstance(X, pd.DataFrame) else feature_names
    return lgb.Dataset(matrix(X), label=None if y is None else np.asarray(y, dtype=np.float64),
                       feature_name=names or "auto", reference=reference, free_raw_data=True,
                       params=params or {"max_bin": DEFAULT_PARAMS["max_bin"], "verbosity": -1})


def panel_dataset(panel: Panel, edge_rows: np.ndarray, params: dict, seed: int) -> lgb.Dataset:
    """The whole panel binned once for LightGBM; each target's slices are then `subset`s of it.

    The bin edges are found on a seeded sample of `edge_rows` (as LightGBM itself samples): give training
    rows only -- for several targets, those before the earliest training end -- so no later slice shapes
    them. The panel's (features x rows) array is handed over as it is (column-major), with no float copy of
    any slice; a subset copies binned bytes only. Binning once serves every target: the default baseline
    bins 4.4 M rows once instead of 5 M rows of training and validation slices target by target.
    """
    names = list(panel.feature_names)
    sample = sample_rows(edge_rows, BIN_SAMPLE, seed)
    edges = lgb.Dataset(np.ascontiguousarray(panel.rows(sample)), label=np.zeros(len(sample)), feature_name=names,
                        params=params, free_raw_data=True).construct()
    return lgb.Dataset(panel.matrix, label=np.zeros(len(panel.frame)), reference=edges, feature_name=names,
                       params=params, free_raw_data=True).construct()


def subset(binned: lgb.Dataset, rows: np.ndarray, y: np.ndarray, params: dict) -> lgb.Dataset:
    """The panel rows `rows` of a `panel_dataset`, labelled `y`."""
    if binned.num_data() >= 2**31:
        raise ValueError("LightGBM subsets index rows with 32-bit integers: the panel has too many rows")
    part = binned.subset(np.asarray(rows, dtype=np.int32), params=params).construct()
    part.set_label(np.asarray(y, dtype=np.float64))
    return part


def fit_booster(X_train, y_train, X_valid, y_valid, params: dict, num_boost_round: int = 2000,
                early_stopping: int = 50, feature_names: list[str] | None = None) -> FitResult:
    """`fit_datasets` on X_* (frames, or float64 arrays with `feature_names`), binned here."""
    train = dataset(X_train, y_train, feature_names=feature_names, params=params)
    valid = dataset(X_valid, y_valid, reference=train, feature_names=feature_names, params=params)
    return fit_datasets(train, valid, params, num_boost_round, early_stopping)


def fit_datasets(train: lgb.Dataset, valid: lgb.Dataset, params: dict, num_boost_round: int = 2000,
                 early_stopping: int = 50) -> FitResult:
    """Boost until the validation metric (log loss by default) has not improved for `early_stopping` rounds;
    keep the best iteration's trees. The metric is LightGBM's own, computed where it keeps the scores: asking
    for the validation probabilities every round cost 3.8 ms a round on 270 k rows (2 s a baseline run), so
    the caller scores the validation rows once, with the trimmed model."""
    check_classes(train.get_label(), valid.get_label())
    booster = lgb.Booster(params=params, train_set=train)
    booster.add_valid(valid, "valid")
    best_loss, best, name, value = math.inf, 0, "", math.nan
    for it in range(1, num_boost_round + 1):
        booster.update()
        # the first metric decides (binary_logloss unless the parameters name another), as lgb.train's would
        results = booster.eval_valid()
        if not results:
            raise ValueError(f"the parameters name no validation metric (metric={params.get('metric')!r}): early "
                             "stopping needs one; leave metric out for log loss")
        _, name, value, higher_better = results[0]
        loss = -value if higher_better else value
        if loss < best_loss:
            best_loss, best = loss, it
        elif it - best >= early_stopping:
            break
    if not best:
        raise ValueError(f"the validation metric was never a number in {it} rounds ({name} {value}): check the "
                         "labels and the lightgbm parameters")
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return FitResult(trimmed, best, params, name, float(best_loss))


def check_classes(y_train, y_valid) -> None:
    """Both slices need goods and bads: say which one lacks them, before any binning or boosting."""
    for name, y in (("training", y_train), ("validation", y_valid)):
        seen = np.unique(np.asarray(y))
        if len(seen) < 2:
            has = f"only one class ({int(seen[0])})" if len(seen) else "no rows"
            raise ValueError(f"the {name} slice has {has}: a model needs both goods and bads; widen the as-of "
                             "range or check the labels")


def sample_rows(rows: np.ndarray, most: int, seed: int) -> np.ndarray:
    """All of `rows`, or a seeded random `most` of them, in their order (for bin edges and in-sample metrics)."""
    rows = np.asarray(rows)
    if len(rows) <= most:
        return rows
    return rows[np.sort(np.random.default_rng(seed).choice(len(rows), most, replace=False))]
