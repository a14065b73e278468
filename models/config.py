"""Training configuration from a TOML file: every key known, every value checked.

  [train]        targets, as_of_start, as_of_end, seed, num_boost_round, early_stopping,
                 valid_months, calib_months, test_months, n_boot, label_window_months, latent_state
  [lightgbm]     any LightGBM parameter (learning_rate, num_leaves, max_depth, ...); the determinism
                 settings (deterministic, force_row_wise, num_threads, seeds) are fixed by the trainer
  [labels]       default_dpd, default_months, early_warning_days, self_cure_days
  [score_scale]  base_score, base_odds, pdo, lo, hi
  [promotion]    ece_tolerance
An unknown section or key is an error (a typo must not silently fall back to a default).
"""
from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from features.labels import LabelConfig
from models.lgbm import FIXED
from models.scale import ScoreScale
from models.training import TrainConfig

SECTIONS = ("train", "lightgbm", "labels", "score_scale", "promotion")
PROMOTION_KEYS = ("ece_tolerance",)


class ConfigError(ValueError):
    pass


def _known(section: str, given: dict, allowed, path: Path) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"{path}: [{section}] has unknown key(s) {', '.join(unknown)}; "
                          f"known keys: {', '.join(sorted(allowed))}")


def load_config(path: Path | None) -> tuple[TrainConfig, dict]:
    """(TrainConfig, promotion settings) from a TOML file, or the defaults when path is None."""
    if path is None:
        return TrainConfig(), {"ece_tolerance": 0.005}
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    _known("(top level)", raw, SECTIONS, path)
    train = dict(raw.get("train", {}))
    _known("train", train, [f.name for f in fields(TrainConfig)
                            if f.name not in ("lgb_params", "labels", "scale")], path)
    lgb = dict(raw.get("lightgbm", {}))
    fixed = sorted(set(lgb) & (set(FIXED) | {"seed", "monotone_constraints"}))
    if fixed:
        raise ConfigError(f"{path}: [lightgbm] cannot set {', '.join(fixed)}: determinism and monotone constraints "
                          "are fixed by the trainer (use [train] seed for the seed)")
    labels = dict(raw.get("labels", {}))
    _known("labels", labels, [f.name for f in fields(LabelConfig)], path)
    scale = dict(raw.get("score_scale", {}))
    _known("score_scale", scale, [f.name for f in fields(ScoreScale)], path)
    promotion = {"ece_tolerance": 0.005, **raw.get("promotion", {})}
    _known("promotion", promotion, PROMOTION_KEYS, path)
    if "targets" in train:
        train["targets"] = tuple(train["targets"])
    try:
        cfg = TrainConfig(**train, lgb_params=lgb, labels=LabelConfig(**labels), scale=ScoreScale(**scale))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg, promotion
