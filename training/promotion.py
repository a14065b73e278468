"""Promotion: champion or challenger, decided on evidence.

The first version becomes `champion`. A later one is compared with the champion on the *new* run's
out-of-time rows for `default` -- both models score the same rows -- and takes `champion` only if its AUC
is higher and its expected calibration error (10 equal-frequency bins) is not worse by more than a
tolerance; otherwise it becomes `challenger`. Each model reads the rows by its own feature list, so a
champion trained on fewer or other catalog features is compared all the same; one that reads a feature
this code no longer computes as it did (its fingerprint changed) cannot be, and a tag says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import default_catalog
from models.bundle import Bundle, BundleError, check_features, load_bundle
from models.registry import CHALLENGER, CHAMPION, TrackingError, bundle_dir_of_version, short_reason

if TYPE_CHECKING:
    from features.outcomes import BillOutcomes

LABEL_COLUMNS = ("y", "default")  # the out-of-time label column oot_features may carry


@dataclass(frozen=True)
class Comparison:
    """The new model against the champion, both scored on the new run's out-of-time `default` rows."""

    rows: int
    auc_new: float
    auc_champion: float
    auc_diff_lo: float
    auc_diff_hi: float
    ece_new: float
    ece_champion: float
    tolerance_ece: float

    @property
    def auc_diff(self) -> float:
        return self.auc_new - self.auc_champion

    @property
    def promote(self) -> bool:
        return self.auc_new > self.auc_champion and self.ece_new <= self.ece_champion + self.tolerance_ece

    def describe(self) -> str:
        verdict = "higher" if self.auc_new > self.auc_champion else "not higher"
        ece = "within" if self.ece_new <= self.ece_champion + self.tolerance_ece else "beyond"
        return (f"AUC {self.auc_new:.4f} vs {self.auc_champion:.4f} ({verdict}; difference 95% CI "
                f"{self.auc_diff_lo:+.4f}..{self.auc_diff_hi:+.4f}), ECE {self.ece_new:.4f} vs "
                f"{self.ece_champion:.4f} ({ece} tolerance {self.tolerance_ece}) on {self.rows:,} out-of-time rows")


def _oot_rows(oot_features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The labelled out-of-time rows: features, label y and the account of each row (bootstrap groups)."""
    label = next((c for c in LABEL_COLUMNS if c in oot_features.columns), None)
    if label is None or "account_id" not in oot_features.columns:
        raise TrackingError("oot_features needs account_id, a label column (y or default) and the feature "
                            f"columns; it has {', '.join(map(str, oot_features.columns[:8]))}...")
    rows = oot_features[oot_features[label].notna()]
    return rows, rows[label].to_numpy(np.float64), rows["account_id"].to_numpy()


def compare(bundle_new: Bundle, bundle_champion: Bundle, oot_features: pd.DataFrame,
            tolerance_ece: float = 0.005, n_boot: int = 200, seed: int = 0,
            champion_features: pd.DataFrame | None = None) -> Comparison:
    """Score the same out-of-time rows with both bundles; AUC, its paired account-level bootstrap CI, ECE.
    `champion_features`: the same rows as the champion reads them, when it computes some features its own way
    (its latent-state filter)."""
    from validation.metrics import auc, bootstrap_auc_diff_ci, ece

    rows, y, groups = _oot_rows(oot_features)
    p_new = bundle_new.predict(rows)["pd_default"].to_numpy()
    old_rows = rows if champion_features is None else _oot_rows(champion_features)[0]
    p_old = bundle_champion.predict(old_rows)["pd_default"].to_numpy()
    lo, hi = bootstrap_auc_diff_ci(y, p_new, p_old, groups, n_boot=n_boot, seed=seed)
    return Comparison(len(y), auc(y, p_new), auc(y, p_old), lo, hi, ece(y, p_new, 10), ece(y, p_old, 10),
                      tolerance_ece)


def promote(client, uri: str, name: str, bundle: Bundle, oot_features: pd.DataFrame | None, *,
            tolerance_ece: float, config, tmp: Path,
            history: BillOutcomes | None = None) -> tuple[str, str, Comparison | None]:
    """(alias for the new version, one-line decision, the comparison when one was made)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return CHAMPION, "no champion yet: the first version becomes champion", None
    old = f"version {champion.version}"
    try:
        old_bundle = load_bundle(bundle_dir_of_version(client, name, champion, tmp / "champion", uri))
    except (BundleError, TrackingError, MlflowException) as exc:
        return CHALLENGER, f"the champion ({old}) cannot be loaded to compare ({short_reason(exc)})", None
    # the champion reads the same rows by its own feature list: any of today's catalog features it was trained
    # on (unchanged since, by fingerprint), and its own latent-state filter's (below)
    try:
        check_features(old_bundle, default_catalog(), f"the champion ({old})")
    except BundleError as exc:
        return CHALLENGER, f"{exc}: it cannot score the new out-of-time rows", None
    if "default" not in bundle.models or "default" not in old_bundle.models:
        return CHALLENGER, f"no default model in both the new version and the champion ({old}) to compare", None
    if oot_features is None or oot_features.empty:
        return CHALLENGER, f"no out-of-time rows were given to compare with the champion ({old})", None
    champion_features = None
    if old_bundle.latent and not old_bundle.same_latent(bundle):
        # another fit, or a new version without a filter: the champion reads the rows through its own filter
        # (a champion without one reads the catalog's columns and leaves the new filter's aside)
        if history is None:
            return CHALLENGER, (f"the champion ({old}) has a latent-state filter of its own and the histories to "
                                "compute its features are not at hand: compare by hand"), None
        from models.latent_state import LatentStateFilter, add_latent_features

        champion_features = add_latent_features(oot_features, history, LatentStateFilter.from_dict(old_bundle.latent))
    seed = getattr(config, "seed", 0)
    n_boot = getattr(config, "n_boot", 200)
    comparison = compare(bundle, old_bundle, oot_features, tolerance_ece, n_boot=n_boot, seed=seed,
                         champion_features=champion_features)
    if comparison.promote:
        return CHAMPION, f"beats the champion ({old}): {comparison.describe()}", comparison
    return CHALLENGER, f"does not beat the champion ({old}): {comparison.describe()}", comparison
