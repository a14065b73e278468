"""Hyperparameter search with optuna, chosen on the validation slice only.

Never on the out-of-time slice: that is the test the chosen model must still pass. A fixed number of
trials with a seeded TPE sampler is deterministic; a time budget is not (it depends on the machine) and is
reported as such. Each trial can be logged by the caller (train.py logs it as a nested mlflow run).
"""
from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import optuna

from models.lgbm import fit_datasets, lgb_params


def search_space(trial: optuna.Trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 63, log=True),
        "max_depth": trial.suggest_int("max_depth", 3, 6),  # bounded: TreeSHAP cost grows with depth
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 50, 1000, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
    }


def tune(train: lgb.Dataset, valid: lgb.Dataset, monotone: list[int], seed: int, *, n_trials: int | None = None,
         timeout: float | None = None, base: dict | None = None, num_boost_round: int = 2000,
         early_stopping: int = 50, on_trial: Callable[[int, dict, float, int], None] | None = None) -> dict:
    """Best LightGBM overrides by the validation metric early stopping reads (log loss unless the parameters
    name another); `on_trial(number, params, valid_loss, rounds)`.
    train and valid are binned slices (`subset`s of a `panel_dataset`, or `lgb.Dataset`s with valid binned
    on train)."""
    if n_trials is None and timeout is None:
        raise ValueError("tuning needs a number of trials or a time budget")
    def objective(trial: optuna.Trial) -> float:
        overrides = {**(base or {}), **search_space(trial)}
        fit = fit_datasets(train, valid, lgb_params(monotone, seed, overrides), num_boost_round, early_stopping)
        if on_trial is not None:
            on_trial(trial.number, overrides, fit.valid_loss, fit.best_iteration)
        return fit.valid_loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return {**(base or {}), **study.best_params}
