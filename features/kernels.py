"""Compiled one-pass kernels over tables sorted by account and date.

Why a kernel: every feature of the catalog, for every account and every as-of date, comes out of one
walk over each account's bills (newest first) with its payments and limits advanced by pointers, so the
cost is one pass over the rows, not one pass per feature. Dates are int64 days since 1970-01-01 here;
NONE marks "never" (a bill never settled, a statement never converted).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

NONE = np.int64(1) << 40  # a day that never comes
BLOCK = 2048  # accounts per parallel work unit: scratch is allocated once per block

# per-bill signal slots: the order of features.catalog.SIGNALS
(S_LAG1, S_LAG2, S_GRACE, S_BEYOND, S_LATE, S_DEPTH, S_LATE3, S_LATE30, S_PAID_RATIO, S_UTIL, S_MIN_ONLY,
 S_PART_PAID, S_DAYS_EARLY, S_CURE_DAYS, S_PENALTY, S_CONVERTED, S_INSTALLMENT, S_AMOUNT) = range(18)
N_SIGNALS = 18
A_COUNT, A_SUM, A_MEAN, A_MAX, A_MIN = range(5)
# state outputs, in this order
STATE = ("dpd_now", "bills_since_late", "days_since_late", "ontime_streak", "longest_ontime_streak", "bills_due",
         "balance_now", "limit_now", "limit_changes_d360", "limit_prev_d360")


@njit(cache=True)
def settlement_days(bill_start, due, min_due, conv, pday, pamt, prow):
    """Each bill's settlement day: the first day the payments so far reach min_due, or its conversion day,
    whichever comes first; a bill with nothing due (min_due 0) is settled on its due date, whatever was paid
    before (as the independent reference reads it). NONE if never."""
    n = len(due)
    paid = np.zeros(n)
    settle = np.full(n, NONE)
    for p in range(len(pday)):  # payments are in (account, day) order: running totals give first-reach days
        b = prow[p]
        paid[b] += pamt[p]
        if settle[b] == NONE and paid[b] >= min_due[b] - 1e-9:
            settle[b] = pday[p]
    for b in range(n):
        if min_due[b] <= 1e-9:
            settle[b] = due[b]
        settle[b] = min(settle[b], conv[b])
    return settle


@njit(cache=True)
def limit_at(day, row_start, leff, lval, lim_start):
    """Limit in force on `day` for each row (rows grouped by account via row_start), NaN if none yet."""
    out = np.full(len(day), np.nan)
    for a in range(len(row_start) - 1):
        l0, l1 = lim_start[a], lim_start[a + 1]
        for i in range(row_start[a], row_start[a + 1]):
            v = np.nan
            for j in range(l0, l1):  # limit rows are few per account and sorted by effective day
                if leff[j] <= day[i]:
                    v = lval[j]
                else:
                    break
            out[i] = v
    return out


@njit(parallel=True, cache=True)
def build(bill_start, pay_start, lim_start, grace, due, stmt, amount, min_due, conv, settle, is_stmt, has_parent,
          lim_at_stmt, pday, pamt, prow, leff, lval, days, penalty_rate, win_kind, win_size, feat_win, feat_sig,
          feat_agg, out_w, out_s):
    """Fill out_w (dates, accounts, windowed features) and out_s (dates, accounts, STATE) in one pass."""
    n_acc = len(bill_start) - 1
    n_t = len(days)
    n_f = len(feat_sig)
    n_w = len(win_kind)
    n_blocks = (n_acc + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        a0 = blk * BLOCK
        a1 = min(n_acc, a0 + BLOCK)
        most = 1
        for a in range(a0, a1):
            most = max(most, bill_start[a + 1] - bill_start[a])
        paid = np.zeros(most)
        sig = np.zeros(N_SIGNALS)
        acc = np.zeros(n_f)
        cnt = np.zeros(n_f)
        in_win = np.zeros(n_w, dtype=np.bool_)
        for a in range(a0, a1):
            b0, b1 = bill_start[a], bill_start[a + 1]
            p0, p1 = pay_start[a], pay_start[a + 1]
            paid[: b1 - b0] = 0.0
            pp = p0
            nb = 0
            g = grace[a]
            for t in range(n_t):
                T = days[t]
                while pp < p1 and pday[pp] <= T:
                    paid[prow[pp] - b0] += pamt[pp]
                    pp += 1
                while b0 + nb < b1 and due[b0 + nb] <= T:
                    nb += 1
                for j in range(n_f):
                    cnt[j] = 0.0
                    acc[j] = 0.0
                dpd_now = 0.0
                since_late = -1.0
                days_since = np.nan
                streak = -1.0
                run = 0.0
                longest = 0.0
                balance = 0.0
                k = 0
                ks = 0
                for i in range(b0 + nb - 1, b0 - 1, -1):  # bills due by T, newest first
                    st = settle[i]
                    settled = st <= T
                    converted = conv[i] <= T
                    lag = st - due[i]
                    dpd = T - due[i]
                    bpaid = paid[i - b0]
                    late = (settled and lag >= 1) or ((not settled) and dpd >= 1)
                    depth = max(lag, 0) if settled else dpd
                    days_late = lag if settled else dpd
                    sig[S_LAG1] = 1.0 if (settled and lag == 1) else 0.0
                    sig[S_LAG2] = 1.0 if (settled and lag == 2) else 0.0
                    sig[S_GRACE] = 1.0 if (settled and lag >= 1 and lag <= g) else 0.0
                    sig[S_BEYOND] = 1.0 if days_late > g else 0.0
                    sig[S_LATE] = 1.0 if late else 0.0
                    sig[S_DEPTH] = depth
                    sig[S_LATE3] = 1.0 if depth >= 3 else 0.0
                    sig[S_LATE30] = 1.0 if depth >= 30 else 0.0
                    if amount[i] > 0 and not converted:
                        sig[S_PAID_RATIO] = min(bpaid, amount[i]) / amount[i]
                    else:
                        sig[S_PAID_RATIO] = np.nan
                    if is_stmt[i] and lim_at_stmt[i] > 0:
                        sig[S_UTIL] = amount[i] / lim_at_stmt[i]
                    else:
                        sig[S_UTIL] = np.nan
                    sig[S_MIN_ONLY] = 1.0 if (is_stmt[i] and settled and not converted
                                              and bpaid < amount[i] - 0.005) else 0.0
                    sig[S_PART_PAID] = 1.0 if ((not settled) and bpaid > 0 and bpaid < min_due[i]) else 0.0
                    sig[S_DAYS_EARLY] = max(-lag, 0) if settled else np.nan
                    sig[S_CURE_DAYS] = lag if (settled and lag >= 1) else np.nan
                    sig[S_PENALTY] = penalty_rate * min_due[i] * days_late if days_late > g else 0.0
                    sig[S_CONVERTED] = 1.0 if converted else 0.0
                    sig[S_INSTALLMENT] = 1.0 if has_parent[i] else 0.0
                    sig[S_AMOUNT] = amount[i]
                    for w in range(n_w):
                        kind = win_kind[w]
                        if kind == 0:
                            in_win[w] = k < win_size[w]
                        elif kind == 1:
                            in_win[w] = is_stmt[i] and ks < win_size[w]
                        else:
                            in_win[w] = dpd < win_size[w]
                    for j in range(n_f):
                        if not in_win[feat_win[j]]:
                            continue
                        v = sig[feat_sig[j]]
                        if np.isnan(v):
                            continue
                        ag = feat_agg[j]
                        if ag == A_MAX:
                            if cnt[j] == 0 or v > acc[j]:
                                acc[j] = v
                        elif ag == A_MIN:
                            if cnt[j] == 0 or v < acc[j]:
                                acc[j] = v
                        else:
                            acc[j] += v
                        cnt[j] += 1
                    # state: depth now, since late, streaks, balance
                    if not settled:
                        dpd_now = max(dpd_now, float(dpd))
                    if late and since_late < 0:
                        since_late = float(k)
                        days_since = float(dpd)
                    ontime = settled and lag <= 0
                    if ontime:
                        run += 1
                        longest = max(longest, run)
                    else:
                        if streak < 0:
                            streak = float(k)
                        run = 0.0
                    if not settled and not converted:
                        balance += max(amount[i] - bpaid, 0.0)
                    k += 1
                    if is_stmt[i]:
                        ks += 1
                for i in range(b0 + nb, b1):  # issued but not yet due: part of the balance
                    if stmt[i] <= T and settle[i] > T and conv[i] > T:
                        balance += max(amount[i] - paid[i - b0], 0.0)
                for j in range(n_f):
                    ag = feat_agg[j]
                    if ag == A_MEAN:
                        out_w[t, a, j] = acc[j] / cnt[j] if cnt[j] > 0 else np.nan
                    elif ag == A_MAX or ag == A_MIN:  # noqa: SIM109 (plain compares compile simplest in numba)
                        out_w[t, a, j] = acc[j] if cnt[j] > 0 else np.nan
                    else:
                        out_w[t, a, j] = acc[j]
                lim_now = np.nan
                lim_prev = np.nan
                changes = 0.0
                for j in range(lim_start[a], lim_start[a + 1]):
                    if leff[j] <= T:
                        lim_now = lval[j]
                        if leff[j] > T - 360 and j > lim_start[a]:
                            changes += 1
                    if leff[j] <= T - 360:
                        lim_prev = lval[j]
                out_s[t, a, 0] = dpd_now
                out_s[t, a, 1] = since_late
                out_s[t, a, 2] = days_since
                out_s[t, a, 3] = streak if streak >= 0 else float(nb)
                out_s[t, a, 4] = longest
                out_s[t, a, 5] = float(nb)
                out_s[t, a, 6] = balance
                out_s[t, a, 7] = lim_now
                out_s[t, a, 8] = changes
                out_s[t, a, 9] = lim_prev
