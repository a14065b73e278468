"""Reason codes from LightGBM's own TreeSHAP contributions.

For each account, the features that pushed its predicted risk up the most (its score down), up to four,
each with a stable code (R + the feature's position in the catalog) and a sentence a customer service agent
can read out, built from the catalog's `reason` and the account's own value ("3 of the last 12 bills were
paid exactly 1 day late", "the newest statement used 95 % of the credit limit").

The one filter: a feature the catalog declares `NotAReason` (the credit limit, the product, the economy, what
was recorded at application) is never an adverse reason, nor is a missing value of a feature whose reason
has no sentence for one. The reasons are the largest positive contributions among the rest (a customer still
gets up to four when one of those features pushed hardest): every caller, the nightly job included, ranks with
`top_adverse(contributions, top, eligible(values, names, catalog))`, and `describe` refuses an index the mask
forbids. The reasons stay exact TreeSHAP's, filtered by a declared rule.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import Catalog, Feature, Reason

if TYPE_CHECKING:  # LightGBM is needed to compile a model, not to apply one
    import lightgbm as lgb


def contributions(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    """Per-feature contributions to the raw log-odds (TreeSHAP), shape (n, features); the bias is dropped."""
    return booster.predict(X.to_numpy(np.float64), pred_contrib=True)[:, :-1]


def eligible(values: np.ndarray, names: list[str], catalog: Catalog) -> np.ndarray:
    """Which (row, feature) may be an adverse reason, shape of `values`: the feature is not `NotAReason`, and a
    missing value only where its reason has a sentence for one."""
    declared = [catalog[n] for n in names]
    allowed = np.array([f.may_be_reason for f in declared])
    missing_allowed = np.array([_missing_may_be_reason(f) for f in declared])
    return allowed & (missing_allowed | ~np.isnan(values))


def _missing_may_be_reason(f: Feature) -> bool:
    return f.may_be_reason and (not isinstance(f.reason, Reason) or f.reason.missing is not None)


def top_adverse(contrib: np.ndarray, top: int = 4, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `top` largest positive contributions per row (-1 where fewer are positive), among the
    `allowed` ones when given (`eligible`'s mask, of contrib's shape)."""
    if allowed is not None:
        contrib = np.where(allowed, contrib, 0.0)
    k = min(top, contrib.shape[1])
    idx = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(contrib, idx, axis=1)
    return np.where(vals > 0, idx, -1), vals


def reason_codes(booster: lgb.Booster, X: pd.DataFrame, catalog: Catalog, top: int = 4) -> pd.DataFrame:
    """Columns reason_1..top (codes like R07) and reason_text_1..top; empty strings where no adverse reason."""
    values, names = X.to_numpy(np.float64), list(X.columns)
    idx, _ = top_adverse(contributions(booster, X), top, eligible(values, names, catalog))
    codes, texts = describe(idx, values, names, catalog)
    out = {}
    for r in range(idx.shape[1]):
        out[f"reason_{r + 1}"] = codes[:, r]
        out[f"reason_text_{r + 1}"] = texts[:, r]
    return pd.DataFrame(out, index=X.index)


def codes_of(names: list[str], catalog: Catalog) -> list[str]:
    """Each feature's reason code: R and its position in the catalog (stable while the catalog keeps its order)."""
    position = {f.name: i + 1 for i, f in enumerate(catalog)}
    return [f"R{position[n]:02d}" for n in names]


def describe(idx: np.ndarray, values: np.ndarray, names: list[str], catalog: Catalog) -> tuple[np.ndarray, np.ndarray]:
    """Codes (R + catalog position) and texts (`text`) for feature indices; '' where idx < 0. An index that
    `eligible` forbids is refused: the indices must come from `top_adverse` with its mask.

    Built once per (slot, feature, value) that occurs, not once per row.
    """
    lookup = np.array([*codes_of(names, catalog), ""], dtype=object)
    codes = lookup[idx]  # idx -1 picks the trailing ''
    texts = np.full(idx.shape, "", dtype=object)
    for r in range(idx.shape[1]):
        col = idx[:, r]
        for j in np.unique(col[col >= 0]):
            rows = np.flatnonzero(col == j)
            feature = catalog[names[j]]
            if not feature.may_be_reason or (not _missing_may_be_reason(feature) and np.isnan(values[rows, j]).any()):
                raise ValueError(f"{feature.name} is no adverse reason here ({feature.reason}): rank the "
                                 "contributions with top_adverse(..., eligible(values, names, catalog))")
            # each distinct value is worded once (by its bits: -0.0 and 0.0 read differently)
            bits, inverse = np.unique(np.ascontiguousarray(values[rows, j]).view(np.int64), return_inverse=True)
            words = np.array([text(feature, v) for v in bits.view(np.float64)], dtype=object)
            texts[rows, r] = words[inverse]
    return codes, texts


# --- the sentence -----------------------------------------------------------------------------------------
_CHOICE = re.compile(r"\[([^|\]]*)\|([^\]]*)\]")


def text(feature: Feature, value: float) -> str:
    """The feature's reason sentence with the account's value, as the catalog declares it; a feature with no
    declared sentence (or one that is no reason) reads "description: value"."""
    reason = feature.reason
    if not isinstance(reason, Reason):
        return f"{feature.description}: {_plain(value)}"
    value = float(value)
    if np.isnan(value):
        return reason.missing if reason.missing is not None else f"{feature.description}: not known"
    if reason.unit == "yes/no":
        return reason.text if value >= 0.5 else reason.zero
    if value < 0 and reason.negative is not None:
        sentence, shown = reason.negative, _formatted(-value, reason.unit)
    elif value == 0 and reason.zero is not None:
        sentence, shown = reason.zero, "0"
    else:
        sentence, shown = reason.text, _formatted(value, reason.unit)
    one = shown in ("1", "less than 1")
    return _CHOICE.sub(lambda m: m.group(1) if one else m.group(2), sentence).replace("{value}", shown)


# per unit: how a value is written, and the least one written as more than 0 (a smaller one reads "less than")
_UNITS = {
    "count": (lambda v: f"{v:,.0f}", 0.5, "1"),
    "days": (lambda v: f"{v:,.0f}" if round(v, 1).is_integer() else f"{v:,.1f}", 0.05, "0.1"),
    "share": (lambda v: f"{v * 100:,.0f} %", 0.005, "1 %"),
    "points": (lambda v: f"{v * 100:,.0f}", 0.005, "1"),
    "amount": (lambda v: f"{v:,.0f}" if abs(v) >= 10 or round(v, 2).is_integer() else f"{v:,.2f}", 0.005, "0.01"),
}


def _formatted(v: float, unit: str) -> str:
    """A value as people read it: whole counts, days to at most one decimal, shares as whole percentages,
    differences of shares in whole percentage points, amounts whole from 10 and in cents below; a value too
    small to show reads "less than" the least one shown, never 0."""
    write, least, least_text = _UNITS[unit]
    return f"less than {least_text}" if 0 < abs(v) < least else write(v)


def _plain(v: float) -> str:
    if np.isnan(v):
        return "missing"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"
