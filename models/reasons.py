"""Reason codes from LightGBM's own TreeSHAP contributions.

For each account, the features that pushed its predicted risk up the most (its score down), up to four,
each with a stable code (R + the feature's position in the catalog) and a plain-language text from the
catalog: what a customer or a reviewer can read, derived from exactly the model that scored them.
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalog import Catalog


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
    names = list(X.columns)
    position = {f.name: i + 1 for i, f in enumerate(catalog)}
    idx, _ = top_adverse(contributions(booster, X), top)
    values = X.to_numpy(np.float64)
    out = {}
    for r in range(idx.shape[1]):
        col = idx[:, r]
        codes = np.array([f"R{position[n]:02d}" for n in names] + [""], dtype=object)[col]
        texts = np.empty(len(col), dtype=object)
        for j in np.unique(col[col >= 0]):  # one pass per feature that appears, not per row
            rows = col == j
            f = catalog[names[j]]
            texts[rows] = [f"{f.description}: {_fmt(v)}" for v in values[rows, j]]
        texts[col < 0] = ""
        out[f"reason_{r + 1}"] = codes
        out[f"reason_text_{r + 1}"] = texts
    return pd.DataFrame(out, index=X.index)


def _fmt(v: float) -> str:
    if np.isnan(v):
        return "missing"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
