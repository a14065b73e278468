"""LightGBM for one target: monotone constraints from the catalog, early stopping on the validation slice.

Deterministic by construction: row-wise histograms, `deterministic=True`, a fixed thread count and seeds,
no bagging unless asked; the same panel, parameters and seed give a byte-identical model text. Depth is
bounded so TreeSHAP reason codes stay cheap at scoring time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

DEFAULT_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": 6,
    "min_data_in_leaf": 200,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "monotone_constraints_method": "intermediate",  # "advanced" fits a little closer at several times the cost
}
FIXED = {"deterministic": True, "force_row_wise": True, "verbosity": -1, "num_threads": 2}


@dataclass
class FitResult:
    booster: lgb.Booster
    best_iteration: int
    params: dict
    evals: dict = field(default_factory=dict)


def lgb_params(monotone: list[int], seed: int, overrides: dict | None = None) -> dict:
    params = {**DEFAULT_PARAMS, **(overrides or {}), **FIXED, "seed": seed, "monotone_constraints": list(monotone)}
    params.update({"bagging_seed": seed, "feature_fraction_seed": seed, "data_random_seed": seed})
    return params


def matrix(X) -> np.ndarray:
    """A float64 array of X (a frame or an array): no copy when it already is one."""
    return X.to_numpy(np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=np.float64)


def dataset(X, y=None, reference: lgb.Dataset | None = None, feature_names: list[str] | None = None) -> lgb.Dataset:
    names = list(X.columns) if isinstance(X, pd.DataFrame) else feature_names
    return lgb.Dataset(matrix(X), label=None if y is None else np.asarray(y, dtype=np.float64),
                       feature_name=names or "auto", reference=reference, free_raw_data=True,
                       params={"max_bin": DEFAULT_PARAMS["max_bin"], "verbosity": -1})


def fit_booster(X_train, y_train, X_valid, y_valid, params: dict, num_boost_round: int = 2000,
                early_stopping: int = 50, callbacks=(), feature_names: list[str] | None = None) -> FitResult:
    """Train with early stopping on the validation slice; the booster keeps only the best iterations.
    X_* are frames, or float64 arrays with `feature_names`."""
    for name, y in (("training", y_train), ("validation", y_valid)):
        if len(np.unique(y)) < 2:
            raise ValueError(f"the {name} slice has only one class ({int(np.asarray(y)[0])}): a model needs both "
                             "goods and bads; widen the as-of range or check the labels")
    train = dataset(X_train, y_train, feature_names=feature_names)
    valid = dataset(X_valid, y_valid, reference=train, feature_names=feature_names)
    evals: dict = {}
    booster = lgb.train(params, train, num_boost_round=num_boost_round, valid_sets=[valid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(early_stopping, verbose=False), lgb.record_evaluation(evals),
                                   *callbacks])
    best = booster.best_iteration or booster.current_iteration()
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return FitResult(trimmed, best, params, evals)
