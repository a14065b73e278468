"""AUC, its account-clustered DeLong variance and KS of every group of a partition, in two compiled passes.

Why: a review asks for these by month and by every segment of three targets: some seventy subsets of a pooled
window of twelve million rows. Taken subset by subset, each costs a dozen numpy passes (its own tie blocks,
placements, account codes, cumulative sums), minutes in all. Here one pass over the rows in the order of the
pooled ranks (`tie_ranks`) gives every group's placement values, AUC and KS at once, and one pass over the rows
in account order adds up the placements per account within each group: Obuchowski's cluster-robust variance,
as `validation.discrimination.delong` computes it for one subset.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from validation.resampling import rank_order


@dataclass(frozen=True)
class Ranked:
    """Rows in the order of their pooled ranks and in account order: sorted once (by counting), read by every
    partition of them."""

    order: np.ndarray  # rows by rank
    starts: np.ndarray  # first position of each tie block in `order`, the row count last
    by_account: np.ndarray  # rows by account
    account_starts: np.ndarray
    bad: np.ndarray  # y == 1

    @classmethod
    def of(cls, y: np.ndarray, ranks: np.ndarray, accounts: np.ndarray) -> Ranked:
        """y 0/1, ranks the pooled dense ranks (`tie_ranks`), accounts integer codes 0..A-1."""
        order, starts = rank_order(np.asarray(ranks, np.int64))
        by_account, account_starts = rank_order(np.asarray(accounts, np.int64))
        return cls(order, starts, by_account, account_starts, np.asarray(y) == 1)


def grouped_auc(ranked: Ranked, groups: np.ndarray, n_groups: int) -> dict:
    """Per group 0..n_groups-1 (`groups` -1: the row is in none): rows, bads, auc, variance, ks, and the
    accounts with bads (with_bads) and with goods (with_goods) behind the variance (NaN below 2 of either)."""
    out = _grouped(ranked.order, ranked.starts, ranked.by_account, ranked.account_starts, ranked.bad,
                   np.asarray(groups, np.int64), n_groups)
    return dict(zip(("rows", "bads", "auc", "variance", "ks", "with_bads", "with_goods"), out, strict=True))


@njit(cache=True)
def _grouped(order, starts, by_account, account_starts, bad, group, n_groups):
    n_bad = np.zeros(n_groups)
    n_good = np.zeros(n_groups)
    for i in range(len(bad)):
        if group[i] >= 0:
            if bad[i]:
                n_bad[group[i]] += 1
            else:
                n_good[group[i]] += 1
    # pass 1, rank order: each row's placement, each group's AUC and KS
    placement = np.zeros(len(bad))
    below_bad, below_good = np.zeros(n_groups), np.zeros(n_groups)
    block_bad, block_good = np.zeros(n_groups), np.zeros(n_groups)
    twice = np.zeros(n_groups)  # 2 x (pairs a bad outranks + half the tied ones)
    ks = np.zeros(n_groups)
    touched = np.empty(n_groups, np.int64)
    for b in range(len(starts) - 1):
        n_touched = 0
        for j in range(starts[b], starts[b + 1]):
            k = group[order[j]]
            if k < 0:
                continue
            if block_bad[k] == 0 and block_good[k] == 0:
                touched[n_touched] = k
                n_touched += 1
            if bad[order[j]]:
                block_bad[k] += 1
            else:
                block_good[k] += 1
        for j in range(starts[b], starts[b + 1]):
            i = order[j]
            k = group[i]
            if k < 0:
                continue
            if bad[i]:
                placement[i] = (below_good[k] + 0.5 * block_good[k]) / max(n_good[k], 1.0)
            else:
                placement[i] = (n_bad[k] - below_bad[k] - 0.5 * block_bad[k]) / max(n_bad[k], 1.0)
        for t in range(n_touched):
            k = touched[t]
            twice[k] += block_bad[k] * (2 * below_good[k] + block_good[k])
            below_bad[k] += block_bad[k]
            below_good[k] += block_good[k]
            if n_bad[k] > 0 and n_good[k] > 0:
                ks[k] = max(ks[k], abs(below_good[k] / n_good[k] - below_bad[k] / n_bad[k]))
            block_bad[k] = 0.0
            block_good[k] = 0.0
    auc = np.full(n_groups, np.nan)
    for k in range(n_groups):
        if n_bad[k] > 0 and n_good[k] > 0:
            auc[k] = twice[k] / (2.0 * n_bad[k] * n_good[k])
    # pass 2, account order: the placements summed per account within each group
    s10, s01, s11 = np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    with_bads, with_goods, clusters = np.zeros(n_groups), np.zeros(n_groups), np.zeros(n_groups)
    sum_bad, sum_good = np.zeros(n_groups), np.zeros(n_groups)
    m, n = np.zeros(n_groups), np.zeros(n_groups)
    for a in range(len(account_starts) - 1):
        n_touched = 0
        for j in range(account_starts[a], account_starts[a + 1]):
            i = by_account[j]
            k = group[i]
            if k < 0:
                continue
            if m[k] == 0 and n[k] == 0:
                touched[n_touched] = k
                n_touched += 1
            if bad[i]:
                sum_bad[k] += placement[i]
                m[k] += 1
            else:
                sum_good[k] += placement[i]
                n[k] += 1
        for t in range(n_touched):
            k = touched[t]
            theta = auc[k] if n_bad[k] > 0 and n_good[k] > 0 else 0.0
            x, z = sum_bad[k] - m[k] * theta, sum_good[k] - n[k] * theta
            s10[k] += x * x
            s01[k] += z * z
            s11[k] += x * z
            with_bads[k] += m[k] > 0
            with_goods[k] += n[k] > 0
            clusters[k] += 1
            sum_bad[k] = sum_good[k] = m[k] = n[k] = 0.0
    variance = np.full(n_groups, np.nan)
    for k in range(n_groups):
        if with_bads[k] >= 2 and with_goods[k] >= 2:
            v10 = with_bads[k] / (with_bads[k] - 1) * s10[k] / n_bad[k]
            v01 = with_goods[k] / (with_goods[k] - 1) * s01[k] / n_good[k]
            v11 = clusters[k] / (clusters[k] - 1) * s11[k]
            variance[k] = v10 / n_bad[k] + v01 / n_good[k] + 2 * v11 / (n_bad[k] * n_good[k])
    return n_bad + n_good, n_bad, auc, variance, ks, with_bads, with_goods
