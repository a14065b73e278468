"""Promotion: champion or challenger, decided on evidence.

The first version becomes `champion`. A later one takes `champion` only if all three hold; otherwise it becomes
`challenger`, and the one-line decision says which did not:

1. **The same targets as the champion.** The nightly job reads every model of the champion (the score and
   limits from `default`, early warnings from `early_warning`, collection treatments from `self_cure`), so a
   version that drops a target, or adds one, changes what the job does: that is promoted by hand if meant,
   never by a metric. The decision names the targets that differ.
2. **A better default model.** Both models score the new run's out-of-time `default` rows; the new one's AUC
   must be higher and its expected calibration error (10 equal-frequency bins) not worse than the champion's
   by more than the tolerance. Equal AUCs (a difference of at most 1e-12, as identical predictions give) are a
   tie, and a tie keeps the champion: there is nothing to gain by switching.
3. **No other target worse.** Each other target is scored on its own out-of-time rows by both models: it may
   not be worse beyond sampling noise (the paired account-level bootstrap 95 % interval of the AUC difference
   lying wholly below 0) nor in calibration beyond the same ECE tolerance.

The default model decides because it makes the score and the limit decisions; the others only must not get
worse, so a version is not held back by an early-warning AUC that is lower by chance. Each model reads the
rows by its own feature list, so a champion trained on fewer or other catalog features is compared all the
same; one that reads a feature this code no longer computes as it did (its fingerprint changed) cannot be,
and the decision says why.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import default_catalog
from models.bundle import OUTPUT, Bundle, BundleError, check_features, load_bundle
from models.registry import CHALLENGER, CHAMPION, TrackingError, bundle_dir_of_version, short_reason

if TYPE_CHECKING:
    from features.outcomes import BillOutcomes

DECIDES = "default"  # the target whose model must be better; the others must not be worse
AUC_TIE = 1e-12  # AUCs closer than this are equal: the same ranking of the same rows


@dataclass(frozen=True)
class Comparison:
    """The new model against the champion for one target, both scored on the same out-of-time rows."""

    rows: int
    auc_new: float
    auc_champion: float
    auc_diff_lo: float
    auc_diff_hi: float
    ece_new: float
    ece_champion: float
    tolerance_ece: float
    target: str = DECIDES

    @property
    def auc_diff(self) -> float:
        return self.auc_new - self.auc_champion

    @property
    def tie(self) -> bool:
        return abs(self.auc_diff) <= AUC_TIE

    @property
    def calibrated(self) -> bool:
        """ECE not worse than the champion's by more than the tolerance."""
        return self.ece_new <= self.ece_champion + self.tolerance_ece

    @property
    def promote(self) -> bool:
        """Better: a higher AUC (not a tie) and calibration within tolerance."""
        return self.auc_diff > AUC_TIE and self.calibrated

    @property
    def worse(self) -> bool:
        """Worse beyond noise: the whole AUC-difference interval below 0, or calibration beyond tolerance."""
        return (self.auc_diff_hi < 0 and not self.tie) or not self.calibrated

    def describe(self) -> str:
        on = f"on {self.rows:,} out-of-time {self.target} rows"
        if self.tie:
            ece = "" if abs(self.ece_new - self.ece_champion) <= AUC_TIE else \
                f" (ECE {self.ece_new:.4f} vs {self.ece_champion:.4f})"
            return f"tie: same AUC {self.auc_new:.4f} {on}{ece}; the champion stays"
        digits = _digits(self.auc_diff, self.auc_diff_lo, self.auc_diff_hi)
        verdict = "higher" if self.auc_diff > 0 else "lower"
        ece = "within" if self.calibrated else "beyond"
        return (f"AUC {self.auc_new:.{digits}f} vs {self.auc_champion:.{digits}f} ({verdict} by "
                f"{abs(self.auc_diff):.{digits}f}; difference 95% CI {self.auc_diff_lo:+.{digits}f}.."
                f"{self.auc_diff_hi:+.{digits}f}), ECE {self.ece_new:.4f} vs {self.ece_champion:.4f} ({ece} "
                f"tolerance {self.tolerance_ece}) {on}")

    def brief(self) -> str:
        """The target's figures in a few words, for a target that is not worse."""
        auc = f"same AUC {self.auc_new:.4f}" if self.tie else f"AUC {self.auc_new:.4f} vs {self.auc_champion:.4f}"
        return f"{self.target} {auc}, ECE {self.ece_new:.4f} vs {self.ece_champion:.4f}"

    def metrics(self) -> dict[str, float]:
        return {"rows": self.rows, "auc_new": self.auc_new, "auc_champion": self.auc_champion,
                "auc_diff": self.auc_diff, "auc_diff_lo": self.auc_diff_lo, "auc_diff_hi": self.auc_diff_hi,
                "ece_new": self.ece_new, "ece_champion": self.ece_champion, "tolerance_ece": self.tolerance_ece}


def _digits(*diffs: float) -> int:
    """Decimals that show the smallest non-zero difference to its first digit (4 at least, 12 at most): an
    interval that is not zero never prints as '+0.0000..+0.0000'."""
    smallest = min((abs(d) for d in diffs if d != 0 and np.isfinite(d)), default=1.0)
    return int(min(12, max(4, -np.floor(np.log10(smallest)))))


@dataclass(frozen=True)
class Promotion:
    """The new version's alias, why, and the comparisons it rests on (none when none was made)."""

    alias: str
    decision: str
    comparisons: dict[str, Comparison] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """For the run: the deciding target's as promotion/<metric>, every other's as promotion/<target>/<metric>."""
        out = {}
        for target, c in self.comparisons.items():
            prefix = "promotion" if target == DECIDES else f"promotion/{target}"
            out |= {f"{prefix}/{k}": float(v) for k, v in c.metrics().items()}
        return out


def _oot_rows(oot_features: pd.DataFrame, target: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The labelled out-of-time rows: features, label y and the account of each row (bootstrap groups)."""
    label = next((c for c in ("y", target) if c in oot_features.columns), None)
    if label is None or "account_id" not in oot_features.columns:
        raise TrackingError(f"the out-of-time rows of {target} need account_id, a label column (y or {target}) and "
                            f"the feature columns; they have {', '.join(map(str, oot_features.columns[:8]))}...")
    rows = oot_features[oot_features[label].notna()]
    return rows, rows[label].to_numpy(np.float64), rows["account_id"].to_numpy()


def compare(bundle_new: Bundle, bundle_champion: Bundle, oot_features: pd.DataFrame,
            tolerance_ece: float = 0.005, n_boot: int = 200, seed: int = 0,
            champion_features: pd.DataFrame | None = None, target: str = DECIDES) -> Comparison:
    """Score the same out-of-time rows of `target` with both bundles; AUC, its paired account-level bootstrap CI,
    ECE. `champion_features`: the same rows as the champion reads them, when it computes some features its own
    way (its latent-state filter)."""
    from validation.metrics import auc, bootstrap_auc_diff_ci, ece

    rows, y, groups = _oot_rows(oot_features, target)
    column = OUTPUT[target]
    p_new = bundle_new.predict(rows)[column].to_numpy()
    old_rows = rows if champion_features is None else _oot_rows(champion_features, target)[0]
    p_old = bundle_champion.predict(old_rows)[column].to_numpy()
    lo, hi = bootstrap_auc_diff_ci(y, p_new, p_old, groups, n_boot=n_boot, seed=seed)
    return Comparison(len(y), auc(y, p_new), auc(y, p_old), lo, hi, ece(y, p_new, 10), ece(y, p_old, 10),
                      tolerance_ece, target)


def differing_targets(new: Bundle, champion: Bundle, old: str) -> str | None:
    """Why the two cannot be compared target for target, with what to do; None when they train the same."""
    lacks = [t for t in champion.targets if t not in new.models]
    adds = [t for t in new.targets if t not in champion.models]
    if not lacks and not adds:
        return None
    parts = ([f"it lacks {', '.join(lacks)}, which the champion has"] if lacks else []) + \
        ([f"it adds {', '.join(adds)}, which the champion lacks"] if adds else [])
    return (f"trains other targets than the champion ({old}): {'; '.join(parts)}. Train the champion's targets "
            f"(train.py --targets {' '.join(champion.targets)}) to compare them, or, if the change is meant, set "
            "the champion alias on this version by hand (mlflow UI or MlflowClient.set_registered_model_alias)")


def promote(client, uri: str, name: str, bundle: Bundle, oot: Mapping[str, pd.DataFrame], *,
            tolerance_ece: float, config, tmp: Path, history: BillOutcomes | None = None,
            cross_validated: tuple[str, ...] = ()) -> Promotion:
    """The new version's alias and why. `oot`: per target, its out-of-time rows (account_id, the features, the
    label y) as the new run kept them. `cross_validated`: targets whose kept model was trained on every fold
    (training.snapshot), so it has no held-out rows to be compared on."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return Promotion(CHAMPION, "no champion yet: the first version becomes champion")
    old = f"version {champion.version}"
    if cross_validated:
        return Promotion(CHALLENGER, f"{', '.join(cross_validated)} cross-validated over accounts: the kept model "
                         f"was trained on every fold, so no rows are held out to compare it with the champion "
                         f"({old}) fairly. Compare the out-of-fold figures in the report, and set the champion alias "
                         "by hand if this version is to score")
    try:
        old_bundle = load_bundle(bundle_dir_of_version(client, name, champion, tmp / "champion", uri))
    except (BundleError, TrackingError, MlflowException) as exc:
        return Promotion(CHALLENGER, f"the champion ({old}) cannot be loaded to compare ({short_reason(exc)})")
    # the champion reads the same rows by its own feature list: any of today's catalog features it was trained
    # on (unchanged since, by fingerprint), and its own latent-state filter's (below)
    try:
        check_features(old_bundle, default_catalog(), f"the champion ({old})")
    except BundleError as exc:
        return Promotion(CHALLENGER, f"{exc}: it cannot score the new out-of-time rows")
    differ = differing_targets(bundle, old_bundle, old)
    if differ is not None:
        return Promotion(CHALLENGER, differ)
    if DECIDES not in bundle.models:
        return Promotion(CHALLENGER, f"neither this version nor the champion ({old}) has a {DECIDES} model, which "
                         "decides promotion: set the champion alias by hand if this version is to score")
    targets = [DECIDES, *(t for t in bundle.targets if t != DECIDES)]
    missing = [t for t in targets if oot.get(t) is None or oot[t].empty]
    if missing:
        return Promotion(CHALLENGER, f"no out-of-time rows of {', '.join(missing)} were given to compare with the "
                         f"champion ({old}): compare by hand")
    filter_of_its_own = old_bundle.latent and not old_bundle.same_latent(bundle)
    if filter_of_its_own and history is None:
        return Promotion(CHALLENGER, f"the champion ({old}) has a latent-state filter of its own and the histories "
                         "to compute its features are not at hand: compare by hand")
    seed = getattr(config, "seed", 0)
    n_boot = getattr(config, "n_boot", 200)
    comparisons: dict[str, Comparison] = {}
    for target in targets:
        champion_features = None
        if filter_of_its_own:
            # another fit, or a new version without a filter: the champion reads the rows through its own filter
            # (a champion without one reads the catalog's columns and leaves the new filter's aside)
            from models.latent_state import LatentStateFilter, add_latent_features

            champion_features = add_latent_features(oot[target], history,
                                                    LatentStateFilter.from_dict(old_bundle.latent))
        try:
            comparisons[target] = compare(bundle, old_bundle, oot[target], tolerance_ece, n_boot=n_boot, seed=seed,
                                          champion_features=champion_features, target=target)
        except ValueError as exc:  # one class only among the rows, or rows a model cannot read
            return Promotion(CHALLENGER, f"{target} cannot be compared with the champion ({old}) on its out-of-time "
                             f"rows ({exc}): compare by hand", comparisons)
    return Promotion(*_verdict(comparisons, old), comparisons)


def _verdict(comparisons: dict[str, Comparison], old: str) -> tuple[str, str]:
    """The alias and the decision's words from the comparisons, the deciding target first."""
    decides = comparisons[DECIDES]
    others = [c for t, c in comparisons.items() if t != DECIDES]
    worse = [c for c in others if c.worse]
    if not decides.promote:
        return CHALLENGER, f"does not beat the champion ({old}): {decides.describe()}"
    if worse:
        return CHALLENGER, (f"does not beat the champion ({old}): {decides.describe()}; but "
                            + "; ".join(f"{c.target} is worse: {c.describe()}" for c in worse))
    rest = "; ".join(c.brief() for c in others)
    return CHAMPION, (f"beats the champion ({old}): {decides.describe()}"
                      + (f"; other targets not worse: {rest}" if rest else ""))
