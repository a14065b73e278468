"""Order checks and merges over key columns, compiled.

Why: the contract checks that tables are sorted, that keys are unique and that every row belongs to a
known account; numpy does each with pairwise temporaries (20 M rows, several passes, ~0.1 s each), one
compiled pass over the int64 keys does it at memory speed. Datetime keys come as their int64 view.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from features.days import NAT


@njit(cache=True)
def refine_order(values, undecided, nat):
    """One key of a lexicographic order check over neighbouring rows i, i+1 still tied on the earlier keys
    (`undecided`, updated in place): returns False at the first descent. With `nat`, NaT compares to
    nothing, as in numpy: a pair holding one is decided and never a descent."""
    for i in range(len(undecided)):
        if undecided[i]:
            a, b = values[i], values[i + 1]
            if nat and (a == NAT or b == NAT):
                undecided[i] = False
            elif a > b:
                return False
            else:
                undecided[i] = a == b
    return True


@njit(cache=True)
def lexicographic(keys, nat):
    """Whether rows are in lexicographic order of the key columns (a tuple of int64 arrays): one pass over
    neighbouring rows, each pair decided by its first unequal key (with nat[k], a NaT in key k decides the
    pair without a descent, as refine_order reads it)."""
    for i in range(len(keys[0]) - 1):
        for k in range(len(keys)):
            a, b = keys[k][i], keys[k][i + 1]
            if (nat[k] and (a == NAT or b == NAT)) or a < b:
                break
            if a > b:
                return False
    return True


@njit(cache=True)
def neighbours_equal(values, same):
    """same[i] &= values[i] == values[i + 1]."""
    for i in range(len(same)):
        if same[i] and values[i] != values[i + 1]:
            same[i] = False


@njit(cache=True)
def in_sorted(keys, ids):
    """Which of the ascending `keys` occur among the ascending `ids`: one merge pass."""
    out = np.zeros(len(keys), dtype=np.bool_)
    j = 0
    for i in range(len(keys)):
        k = keys[i]
        while j < len(ids) and ids[j] < k:
            j += 1
        out[i] = j < len(ids) and ids[j] == k
    return out


@njit(cache=True)
def nondecreasing(values):
    i = 1
    while i < len(values) and values[i] >= values[i - 1]:
        i += 1
    return i >= len(values)


@njit(cache=True)
def descents(values):
    """How many times a value is below the one before it."""
    n = 0
    for i in range(1, len(values)):
        if values[i] < values[i - 1]:
            n += 1
    return n


@njit(cache=True)
def differs_at(values, rows, expected):
    """rows[i] >= 0 and values[rows[i]] != expected[i]: a looked-up row that belongs elsewhere."""
    out = np.zeros(len(rows), dtype=np.bool_)
    for i in range(len(rows)):
        r = rows[i]
        out[i] = r >= 0 and values[r] != expected[i]
    return out

