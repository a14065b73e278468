"""Training configuration from a TOML file: every key known, every value checked.

  [train]        targets, as_of_start, as_of_end, seed, num_boost_round, early_stopping,
                 valid_months, calib_months, test_months, n_boot, label_window_months, latent_state,
                 month_end_share, split, folds
  [lightgbm]     any LightGBM parameter (learning_rate, num_leaves, max_depth, ...); the determinism
                 settings (deterministic, force_row_wise, num_threads, seeds) are fixed by the trainer
  [labels]       default_dpd, default_months, early_warning_days, self_cure_days
  [score_scale]  base_score, base_odds, pdo, lo, hi
  [promotion]    ece_tolerance
An unknown section or key is an error (a typo must not silently fall back to a default).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from features.targets import DEFAULT_TARGETS, LabelConfig, check_targets, target
from models.lgbm import FIXED
from models.scale import ScoreScale

SPLITS = ("auto", "time", "accounts")


@dataclass(frozen=True)
class TrainConfig:
    targets: tuple[str, ...] = DEFAULT_TARGETS
    as_of_start: str | None = None  # first as-of day; default: the manifest's as_of_from, else 3 months in
    as_of_end: str | None = None  # last as-of month end; default: the extraction date
    seed: int = 7
    lgb_params: dict = field(default_factory=dict)
    num_boost_round: int = 2000
    # rounds without improvement on the validation slice. 10, as scikit-learn's gradient boosting: on the
    # baseline (two worlds, three targets) 30 found the same best round in 5 of 6 fits; early warning on seed 1
    # stopped at 276 rounds instead of 315, out-of-time AUC 0.71064 vs 0.71067, log loss 0.32447 vs 0.32448
    early_stopping: int = 10
    valid_months: int = 4
    calib_months: int = 0  # 0: calibrate on an account-disjoint half of the validation months
    test_months: int = 2
    n_boot: int = 200
    label_window_months: int = 6  # embargo for labels brought from a file
    tune_trials: int | None = None  # hyperparameter search: a fixed number of trials (deterministic) ...
    tune_timeout: float | None = None  # ... or a time budget in seconds
    # the latent-state filter's features (models.latent_state), fitted on what is known at the earliest
    # training end: on the 200 k baseline they lifted early warning and self-cure to 0.995 of the oracle's AUC.
    # Off by default for now: scoring with them took 10-18 % longer, and a pyfunc caller must pass their columns
    latent_state: bool = False
    # the share of customer-months whose panel row is as of the month end; the others are as of a seeded day
    # spread over the month (features.panel.as_of_pairs), because the nightly job runs on any day and the
    # states of mid-month (1-9 days past due) are rare at month ends. Month ends stay where the synthetic
    # truth lives (the oracle comparison reads those rows). 1.0: month ends only. Labels from a file are
    # joined on month ends.
    month_end_share: float = 0.5
    # how rows are held out: "time" (slices in time with embargoes), "accounts" (cross-validation over
    # account-disjoint folds, for one snapshot or too few as-of months: training.snapshot) or "auto" (in time
    # when the labelled months allow the slices, else over accounts, saying why)
    split: str = "auto"
    folds: int = 5  # account-disjoint folds when the split is over accounts
    labels: LabelConfig = field(default_factory=LabelConfig)
    scale: ScoreScale = field(default_factory=ScoreScale)

    def __post_init__(self) -> None:
        check_targets(self.targets)
        if not isinstance(self.latent_state, bool):
            raise ValueError(f"latent_state must be true or false, got {self.latent_state!r}")
        if not isinstance(self.month_end_share, int | float) or not 0.0 < self.month_end_share <= 1.0:
            raise ValueError(f"month_end_share must be a share in (0, 1], got {self.month_end_share!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not isinstance(self.folds, int) or self.folds < 3:
            raise ValueError(f"folds must be a whole number >= 3 (one tests, one stops and calibrates, the rest "
                             f"train), got {self.folds!r}")
        for name, least in (("valid_months", 1), ("test_months", 1), ("calib_months", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be a whole number of months >= {least}, got {value!r}"
                                 + (" (0 calibrates on half of the validation accounts)" if least == 0 else ""))

    def embargo(self, name: str, supplied: bool) -> int:
        """Month ends between slices: the target's performance window, or the file's for supplied labels."""
        return self.label_window_months if supplied else target(name).embargo_months(self.labels)


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
