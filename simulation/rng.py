"""Random draws keyed by (seed, stream, unit, month).

A draw is a hash of its key, not the next number of a shared generator: the same customer in the same
month gets the same uniform whatever else was simulated, in whatever chunk order. That is what lets a
later replay of the same customers under another policy reuse their luck (common random numbers), and
what makes the output independent of chunk sizes and process counts.
"""
from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective avalanche on uint64 (wrapping arithmetic is intended)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stream: int, unit: np.ndarray, month: int | np.ndarray = 0) -> np.ndarray:
    """One U[0, 1) per unit, a pure function of (seed, stream, unit, month)."""
    unit = np.asarray(unit, dtype=np.uint64)
    key = np.uint64((seed * 1_000_003 + stream) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = _mix(_mix(unit * np.uint64(4096) + np.asarray(month, dtype=np.uint64)) ^ _mix(key))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def keyed_uniforms(unit: np.ndarray, salt: str) -> np.ndarray:
    """One U[0, 1) per unit keyed by a text salt: a stable pseudo-random order of accounts, the same on every
    run and machine, independent of row order (policy control cells, the calibration half of training)."""
    key = np.uint64(int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little"))
    with np.errstate(over="ignore"):
        z = _mix(np.asarray(unit, dtype=np.int64).view(np.uint64) + key - _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw: `cdf` is cumulative probabilities, one row per element of `u`, or one row for all."""
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int8)
    return np.minimum((u[:, None] >= cdf[:, :-1]).sum(axis=1), cdf.shape[-1] - 1).astype(np.int8)
