"""Reason codes from LightGBM's own TreeSHAP contributions.

For each account, the features that pushed its predicted risk up the most (its score down), up to four,
each with a stable code (R + the feature's position in the catalog) and a plain-language text from the
catalog: what a customer or a reviewer can read, derived from exactly the model that scored them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import Catalog

if TYPE_CHECKING:  # LightGBM is needed to compile a model, not to apply one
    import lightgbm as lgb


def contributions(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """Per-feature contributions to the raw log-odds (TreeSHAP), shape (n, features); the bias is dropped."""
    return booster.predict(X.to_numpy(np.float64), pred_contrib=True)[:, :-1]


def top_adverse(contrib: np.ndarray, top: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `top` largest positive contributions per row (-1 where fewer are positive)."""
    k = min(top, contrib.shape[1])
    idx = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(contrib, idx, axis=1)
    return np.where(vals > 0, idx, -1), vals


def reason_codes(booster: lgb.Booster, X: pd.DataFrame, catalog: Catalog, top: int = 4) -> pd.DataFrame:
    """Columns reason_1..top (codes like R07) and reason_text_1..top; empty strings where no adverse reason."""
    idx, _ = top_adverse(contributions(booster, X), top)
    codes, texts = describe(idx, X.to_numpy(np.float64), list(X.columns), catalog)
    out = {}
    for r in range(idx.shape[1]):
        out[f"reason_{r + 1}"] = codes[:, r]
        out[f"reason_text_{r + 1}"] = texts[:, r]
    return pd.DataFrame(out, index=X.index)


def describe(idx: np.ndarray, values: np.ndarray, names: list[str], catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """Codes (R + catalog position) and texts ("description: value") for feature indices; '' where idx < 0.

    Built once per (slot, feature, value) that occurs, not once per row.
    """
    position = {f.name: i + 1 for i, f in enumerate(catalog)}
    lookup = np.array([f"R{position[n]:02d}" for n in names] + [""], dtype=object)
    codes = lookup[idx]  # idx -1 picks the trailing ''
    texts = np.full(idx.shape, "", dtype=object)
    for r in range(idx.shape[1]):
        col = idx[:, r]
        for j in np.unique(col[col >= 0]):
            rows = np.flatnonzero(col == j)
            description = catalog[names[j]].description
            # each distinct value is worded once (by its bits: -0.0 and 0.0 read differently)
            bits, inverse = np.unique(np.ascontiguousarray(values[rows, j]).view(np.int64), return_inverse=True)
            words = np.array([f"{description}: {_fmt(v)}" for v in bits.view(np.float64)], dtype=object)
            texts[rows, r] = words[inverse]
    return codes, texts


def _fmt(v: float) -> str:
    if np.isnan(v):
        return "missing"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
