"""The saved model bundle: LightGBM text models plus JSON metadata, checked on load, never unpickled.

A bundle directory holds one `<target>.txt` per trained target (LightGBM's own text format) and
`bundle.json`: the feature names and catalog version, each target's calibration and metrics, the score
scale, training reference distributions for drift checks, the data fingerprint, library versions and a
SHA-256 of every file. Loading re-hashes everything and refuses a bundle whose files changed or whose
features differ from the ones the caller will supply.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import Catalog
from features.targets import TARGETS
from models.calibration import Calibrator
from models.lgbm_text import feature_names
from models.scale import ScoreScale

if TYPE_CHECKING:  # a loaded bundle builds its Booster on first use: scoring compiles the text instead
    import lightgbm as lgb

# 2: `fingerprints` of the catalog features the models read; 1 (no fingerprints) loads while the catalog's
#    version is the one it was trained with
# 3: a bundle whose models read extra columns (`extra`, features.extra); code that cannot join them refuses it
SCHEMA_VERSION = 2
WITH_EXTRA = 3
READABLE = (1, 2, 3)
META = "bundle.json"
OUTPUT = {t.name: t.output for t in TARGETS}  # output column per target, from the one declaration


class BundleError(ValueError):
    """A bundle that cannot be trusted or used; the message says which file and what to do."""


@dataclass
class TargetModel:
    """One target's model: LightGBM's text (what the bundle stores), its calibrator and metrics."""

    target: str
    text: str
    calibrator: Calibrator
    best_iteration: int
    metrics: dict = field(default_factory=dict)
    # the benchmark scorecard trained beside it (models.scorecard, its JSON form): a review holds the model
    # against it on data neither has seen
    scorecard: dict = field(default_factory=dict)

    @classmethod
    def from_booster(cls, target: str, booster: lgb.Booster, calibrator: Calibrator, best_iteration: int,
                     metrics: dict | None = None) -> TargetModel:
        model = cls(target, booster.model_to_string(), calibrator, best_iteration, metrics or {})
        model.__dict__["booster"] = booster  # the cached Booster is the one given
        return model

    @cached_property
    def booster(self) -> lgb.Booster:
        """The LightGBM Booster of `text`, built (and LightGBM imported) on first use."""
        import lightgbm as lgb

        return lgb.Booster(model_str=self.text)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator.transform(self.booster.predict(X))


@dataclass
class Bundle:
    models: dict[str, TargetModel]
    feature_names: list[str]
    catalog_version: str
    scale: ScoreScale = field(default_factory=ScoreScale)
    reference: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # fingerprint, label config, slices, anything descriptive
    # the latent-state filter's parameters (models.latent_state), when the models read its features
    latent: dict | None = None
    # each catalog feature's fingerprint at training (features.catalog): scoring refuses one that changed
    fingerprints: dict[str, str] = field(default_factory=dict)
    # the columns from outside the histories the models read, and the file they came from at training
    # (features.extra.ExtraColumns.describe): scoring requires them
    extra: dict | None = None

    @property
    def extra_names(self) -> list[str]:
        """The features supplied with --extra, not computed from the histories."""
        return list(self.extra["columns"]) if self.extra else []

    def same_latent(self, other: Bundle) -> bool:
        """Whether both read their latent-state features through the same filter (or neither has one)."""
        return _canonical(_plain(self.latent)) == _canonical(_plain(other.latent))

    @property
    def catalog_feature_names(self) -> list[str]:
        """The features the catalog computes: the bundle's list without its latent-state filter's and the extra
        columns."""
        own = (set(self.latent["feature_names"]) if self.latent else set()) | set(self.extra_names)
        return [n for n in self.feature_names if n not in own]

    @property
    def targets(self) -> list[str]:
        return list(self.models)

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in features.columns]
        extra = [c for c in missing if c in self.extra_names]
        if extra:
            raise BundleError(f"the data lacks {len(extra)} extra column(s) the model was trained with "
                              f"({', '.join(extra)}, from {self.extra.get('file') or 'the --extra file'}): pass them "
                              "beside the features")
        if missing:
            raise BundleError(f"the data lacks {len(missing)} feature(s) the model was trained on "
                              f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): build features with "
                              f"the catalog version {self.catalog_version} the bundle was trained with")
        return features[self.feature_names].to_numpy(np.float64)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Calibrated probabilities per trained target, and the score from pd_default when it is there."""
        X = self._matrix(features)
        out = pd.DataFrame(index=features.index)
        for target, model in self.models.items():
            out[OUTPUT[target]] = model.predict(X)
        if "default" in self.models:
            out["score"], _ = self.scale.score(out["pd_default"].to_numpy())
        return out

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write atomically: a temporary sibling directory renamed into place."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            targets = {}
            for target, m in self.models.items():
                (tmp / f"{target}.txt").write_text(m.text)
                targets[target] = {"model_file": f"{target}.txt", "sha256": _sha(m.text.encode()),
                                   "best_iteration": m.best_iteration, "calibration": m.calibrator.to_dict(),
                                   "metrics": _plain(m.metrics)}
                if m.scorecard:
                    targets[target]["scorecard"] = _plain(m.scorecard)
            meta = {"schema_version": WITH_EXTRA if self.extra else SCHEMA_VERSION, "targets": targets,
                    "feature_names": self.feature_names,
                    "catalog_version": self.catalog_version, "score_scale": self.scale.to_dict(),
                    "reference": _plain(self.reference), "info": _plain(self.info), "versions": versions()}
            if self.latent is not None:
                meta["latent"] = _plain(self.latent)
            meta["fingerprints"] = dict(self.fingerprints)
            if self.extra:
                meta["extra"] = _plain(self.extra)
            meta["checksum"] = _sha(_canonical(meta))
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path


def bundle_checksum(path: Path) -> str:
    """The metadata checksum a bundle directory declares (what identifies a bundle outside a registry)."""
    try:
        return str(json.loads((Path(path) / META).read_text()).get("checksum", ""))
    except (OSError, json.JSONDecodeError):
        raise BundleError(f"{path} is not a readable model bundle (no valid {META}); pass the directory "
                          "train.py wrote") from None


def load_bundle(path: Path, catalog: Catalog | None = None) -> Bundle:
    """Load and verify a bundle (checksums, schema); with `catalog`, also that this code computes every
    catalog feature the models read as it did at training (`check_features`)."""
    path = Path(path)
    meta_file = path / META
    if not meta_file.exists():
        raise BundleError(f"{path} is not a model bundle (no {META}); pass the directory train.py wrote")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{meta_file} is not valid JSON ({exc}): the bundle is corrupt; "
                          "retrain or restore it") from None
    checksum = meta.pop("checksum", None)
    if checksum != _sha(_canonical(meta)):
        raise BundleError(f"{meta_file}: checksum mismatch, the metadata was changed after training; "
                          "retrain or restore the bundle")
    if meta.get("schema_version") not in READABLE:
        raise BundleError(f"{meta_file}: bundle schema {meta.get('schema_version')} is not one of {READABLE}: "
                          "score it with the code version it was trained with, or retrain")
    names = meta["feature_names"]
    latent = meta.get("latent")
    models = {}
    for target, t in meta["targets"].items():
        text = (path / t["model_file"]).read_text()
        if _sha(text.encode()) != t["sha256"]:
            raise BundleError(f"{path / t['model_file']}: SHA-256 mismatch, the model file was changed; "
                              "retrain or restore the bundle")
        if feature_names(text) != names:
            raise BundleError(f"{path / t['model_file']}: its features differ from {META}'s feature_names")
        models[target] = TargetModel(target, text, Calibrator.from_dict(t["calibration"]), t["best_iteration"],
                                     t.get("metrics", {}), t.get("scorecard", {}))
    fingerprints = meta.get("fingerprints")
    if fingerprints is None and catalog is not None:  # schema 1: only the catalog version tells
        if meta["catalog_version"] != catalog.version:
            raise BundleError(f"{path}: trained with catalog version {meta['catalog_version']}, this code has "
                              f"{catalog.version}, and the bundle predates feature fingerprints: score it with "
                              "the code version it was trained with, or retrain")
        fingerprints = {n: fp for n, fp in catalog.fingerprints().items() if n in names}
    bundle = Bundle(models, names, meta["catalog_version"], ScoreScale(**meta["score_scale"]), meta["reference"],
                    meta.get("info", {}), latent, fingerprints or {}, meta.get("extra"))
    if catalog is not None:
        check_features(bundle, catalog, path)
    return bundle


def check_features(bundle: Bundle, catalog: Catalog, path: Path | str = "the bundle") -> None:
    """Refuse a bundle whose catalog features this code no longer computes as they were at training.

    A model's features come from the catalog (those with a fingerprint, checked here: declaration and
    semantics version), from its own latent-state filter (computed with the bundle's parameters) or from
    outside. Any subset of the catalog, in any order, is fine: adding a feature to the catalog strands no model.
    """
    current = catalog.fingerprints()
    wanted = [n for n in bundle.feature_names if n in bundle.fingerprints]  # the catalog's, not the filter's
    gone = [n for n in wanted if n not in current]
    changed = [n for n in wanted if n in current and bundle.fingerprints[n] != current[n]]
    if gone or changed:
        parts = ([f"no longer in the catalog: {', '.join(gone[:5])}"] if gone else []) + \
            ([f"computed differently since training (fingerprint changed): {', '.join(changed[:5])}"]
             if changed else [])
        raise BundleError(f"{path}: features the model reads are {'; '.join(parts)}; score it with the code "
                          "version it was trained with, or retrain")


def versions() -> dict:
    import lightgbm as lgb
    import sklearn

    return {"python": platform.python_version(), "lightgbm": lgb.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _plain(obj):
    """JSON-safe copy: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
