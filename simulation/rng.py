"""Random draws keyed by (seed, stream, unit, month).

A draw is a hash of its key, not the next number of a shared generator: the same customer in the same
month gets the same uniform whatever else was simulated, in whatever chunk order. That is what lets a
later replay of the same customers under another policy reuse their luck (common random numbers), and
what makes the output independent of chunk sizes and process counts.
"""
from __future__ import annotations

import numpy as np

from features.stable_hash import splitmix64 as _mix
from features.stable_hash import to_unit


def uniforms(seed: int, stream: int, unit: np.ndarray, month: int | np.ndarray = 0) -> np.ndarray:
    """One U[0, 1) per unit, a pure function of (seed, stream, unit, month)."""
    unit = np.asarray(unit, dtype=np.uint64)
    key = np.uint64((seed * 1_000_003 + stream) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = _mix(_mix(unit * np.uint64(4096) + np.asarray(month, dtype=np.uint64)) ^ _mix(key))
    return to_unit(z)


def categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: `cdf` is cumulative probabilities, one row per element of `u`, or one row for all."""
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int8)
    return np.minimum((u[:, None] >= cdf[:, :-1]).sum(axis=1), cdf.shape[-1] - 1).astype(np.int8)


def geometric(u: np.ndarray, mean: float) -> np.ndarray:
    """Inverse-CDF draw of a geometric count 0, 1, 2, ... with the given mean."""
    if mean <= 0:
        return np.zeros(np.shape(u), dtype=np.int64)
    q = mean / (1.0 + mean)  # P(count >= n + 1 | count >= n)
    return np.floor(np.log1p(-np.asarray(u)) / np.log(q)).astype(np.int64)
