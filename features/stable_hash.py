"""Stable account hashing: the product's own, so no change to the simulator can reshuffle live decisions.

Control cells of the collection policy and the calibration half of training are drawn by a hash of the
account id and a text salt: the same account lands in the same cell on every run, machine and row order,
and a new salt gives an independent draw. The values are pinned by a test; changing them reassigns every
account's control cell, so they must never change silently.
"""
from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53: the top 53 bits of a uint64 as a float in [0, 1)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective avalanche on uint64 (wrapping arithmetic is intended)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def to_unit(z: np.ndarray) -> np.ndarray:
    """uint64 hashes as uniforms in [0, 1)."""
    return (z >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def account_uniforms(account_id: np.ndarray, salt: str) -> np.ndarray:
    """One U[0, 1) per account keyed by a text salt: a stable pseudo-random order of accounts, independent
    of row order (policy control cells, the calibration half of training)."""
    key = np.uint64(int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little"))
    with np.errstate(over="ignore"):
        return to_unit(splitmix64(np.asarray(account_id, dtype=np.int64).view(np.uint64) + key - _GOLDEN))
