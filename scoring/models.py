"""The bundle as the scoring workers use it: compiled trees and calibrators, prepared once in the parent.

The trees are compiled from the bundle's model text: scoring never imports LightGBM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.catalog import Catalog, default_catalog
from features.extra import with_extra
from features.targets import BY_NAME
from models.calibration import Calibrator
from models.latent_state import LatentStateFilter, with_latent
from models.scale import ScoreScale
from models.treeshap import CompiledTrees, compile_text, predict_probability

if TYPE_CHECKING:
    from models.bundle import Bundle


@dataclass(frozen=True)
class Models:
    """What a worker needs of the bundle: compiled trees, calibrators, the score scale and drift references."""

    feature_names: list[str]
    compiled: dict[str, CompiledTrees]
    calibrators: dict[str, Calibrator]
    scale: ScoreScale
    reference: dict
    latent: LatentStateFilter | None = None  # computes the bundle's latent-state features from the histories
    extra: dict | None = None  # the extra columns the models read (Bundle.extra): joined from --extra's file

    @classmethod
    def of(cls, bundle: Bundle) -> Models:
        return cls(bundle.feature_names, {t: compile_text(m.text) for t, m in bundle.models.items()},
                   {t: m.calibrator for t, m in bundle.models.items()}, bundle.scale, bundle.reference,
                   LatentStateFilter.from_dict(bundle.latent) if bundle.latent else None, bundle.extra or None)

    @property
    def catalog(self) -> Catalog:
        """The features the models read, described: the catalog's, the latent-state filter's, the extra ones."""
        return with_extra(with_latent(default_catalog(), self.latent), self.extra)

    @property
    def targets(self) -> list[str]:
        return list(self.compiled)

    def probability(self, target: str, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probability, what Bundle.predict gives, from the compiled trees: of every row of X, or
        of `rows` only, NaN elsewhere (a target is predicted only within its scoring population)."""
        if rows is None:
            return self.calibrators[target].transform(predict_probability(self.compiled[target], X))
        out = np.full(len(X), np.nan)
        if len(rows):
            out[rows] = self.calibrators[target].transform(predict_probability(self.compiled[target], X, rows=rows))
        return out

    def in_population(self, target: str, X: np.ndarray, dpd_now: np.ndarray, on_book: np.ndarray) -> np.ndarray:
        """The target's probability within the population it is scored on (features.targets), NaN outside."""
        inside = BY_NAME[target].scored_on.mask(np.nan_to_num(dpd_now), on_book)
        return self.probability(target, X, None if inside.all() else np.flatnonzero(inside))

    def predict_populations(self, X: np.ndarray, dpd_now: np.ndarray, on_book: np.ndarray) -> dict[str, np.ndarray]:
        """Every target's probability within its scoring population, NaN outside."""
        return {name: self.in_population(name, X, dpd_now, on_book) for name in self.targets}
