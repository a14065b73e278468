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
SUB = 64  # accounts whose output rows are staged together before they are copied out

# per-bill signal slots: the order of features.catalog.SIGNALS
(S_LAG1, S_LAG2, S_GRACE, S_BEYOND, S_LATE, S_DEPTH, S_LATE3, S_LATE30, S_PAID_RATIO, S_UTIL, S_MIN_ONLY,
 S_PART_PAID, S_DAYS_EARLY, S_CURE_DAYS, S_PENALTY, S_CONVERTED, S_INSTALLMENT, S_AMOUNT, S_EARLY) = range(19)
N_SIGNALS = 19
A_COUNT, A_SUM, A_MEAN, A_MAX, A_MIN = range(5)
# state outputs, in this order
STATE = ("dpd_now", "bills_since_late", "days_since_late", "ontime_streak", "longest_ontime_streak", "bills_due",
         "balance_now", "limit_now", "limit_changes_d360", "limit_prev_d360")
N_STATE = len(STATE)


@njit(parallel=True, cache=True)
def settlement_days(bill_start, pay_start, due, min_due, conv, pday, pamt, prow):
    """Each bill's settlement day: the first day the payments so far reach min_due, or its conversion day,
    whichever comes first; a bill with nothing due (min_due 0) is settled on its due date, whatever was paid
    before (as the independent reference reads it). NONE if never. Accounts in parallel: a payment repays a
    bill of its own account (the contract checks it)."""
    n = len(due)
    paid = np.empty(n)
    settle = np.empty(n, dtype=np.int64)
    for b in prange(n):  # filled in parallel: the first touch of fresh pages is most of the cost here
        paid[b] = 0.0
        settle[b] = NONE
    for a in prange(len(bill_start) - 1):
        for p in range(pay_start[a], pay_start[a + 1]):  # in day order: running totals give first-reach days
            b = prow[p]
            paid[b] += pamt[p]
            if settle[b] == NONE and paid[b] >= min_due[b] - 1e-9:
                settle[b] = pday[p]
        for b in range(bill_start[a], bill_start[a + 1]):
            if min_due[b] <= 1e-9:
                settle[b] = due[b]
            settle[b] = min(settle[b], conv[b])
    return settle


@njit(parallel=True, cache=True)
def statement_bills(bill_start, is_installment, has_parent):
    """Bills that are a revolving line's own statements: neither a cash loan's installment nor a plan made
    from a statement (has_parent). Accounts in parallel, without an account index per bill."""
    out = np.zeros(len(has_parent), dtype=np.bool_)
    for a in prange(len(bill_start) - 1):
        for b in range(bill_start[a], bill_start[a + 1]):
            out[b] = not is_installment[a] and not has_parent[b]
    return out


@njit(parallel=True, cache=True)
def limit_at(day, row_start, leff, lval, lim_start):
    """Limit in force on `day` for each row (rows grouped by account via row_start), NaN if none yet."""
    out = np.empty(len(day))
    for i in prange(len(day)):  # filled in parallel, as in settlement_days
        out[i] = np.nan
    for a in prange(len(row_start) - 1):
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


@njit(cache=True)
def run_starts(keys, ids):
    """Row offsets of each id's run in `keys`: np.searchsorted(keys, [*ids, max int64], side="left") for
    sorted keys and ids, by one merge pass (linear, cache-friendly) instead of a binary search per id."""
    n, m = len(keys), len(ids)
    out = np.empty(m + 1, dtype=np.int64)
    j = 0
    for i in range(m):
        v = ids[i]
        while j < n and keys[j] < v:
            j += 1
        out[i] = j
    big = np.iinfo(np.int64).max
    while j < n and keys[j] < big:
        j += 1
    out[m] = j
    return out


@njit(parallel=True, cache=True)
def rows_in_account(bill_ids, bill_start, wanted, want_start):
    """Row of each wanted bill id among its own account's bills (-1 where it is not there): a binary search
    in the account's few bills when their ids ascend, a scan otherwise; accounts in parallel."""
    out = np.empty(len(wanted), dtype=np.int64)
    for p in prange(len(wanted)):  # filled in parallel, as in settlement_days
        out[p] = -1
    for a in prange(len(bill_start) - 1):
        b0, b1 = bill_start[a], bill_start[a + 1]
        ascending = True
        for i in range(b0 + 1, b1):
            if bill_ids[i] <= bill_ids[i - 1]:
                ascending = False
                break
        for p in range(want_start[a], want_start[a + 1]):
            w = wanted[p]
            if ascending:
                lo, hi = b0, b1
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if bill_ids[mid] < w:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < b1 and bill_ids[lo] == w:
                    out[p] = lo
            else:
                for i in range(b0, b1):
                    if bill_ids[i] == w:
                        out[p] = i
                        break
    return out


@njit(cache=True)
def row_layout(open_day, days, block):
    """Output rows: (as-of date, open account) pairs, date-major, accounts in order. Returns each date's first
    row (n_t + 1), each (date, block of accounts)'s first row, and each row's account."""
    n_acc, n_t = len(open_day), len(days)
    n_blocks = (n_acc + block - 1) // block
    row_off = np.zeros(n_t + 1, dtype=np.int64)
    blk_row = np.zeros((n_t, max(n_blocks, 1)), dtype=np.int64)
    r = 0
    for t in range(n_t):
        row_off[t] = r
        T = days[t]
        for a in range(n_acc):
            if a % block == 0:
                blk_row[t, a // block] = r
            if open_day[a] <= T:
                r += 1
    row_off[n_t] = r
    a_idx = np.empty(r, dtype=np.int64)
    r = 0
    for t in range(n_t):
        T = days[t]
        for a in range(n_acc):
            if open_day[a] <= T:
                a_idx[r] = a
                r += 1
    return row_off, blk_row, a_idx


@njit(parallel=True, cache=True)
def stable_days(bill_start, pay_start, settle, conv, pday, prow):
    """The day from which a bill's signals no longer change with T: settled, converted if it ever is, and
    every payment of it made (NONE if it never settles). Accounts in parallel, as in settlement_days."""
    out = np.empty_like(settle)
    for b in prange(len(settle)):  # copied in parallel, as settlement_days fills
        out[b] = settle[b]
    for a in prange(len(bill_start) - 1):
        for b in range(bill_start[a], bill_start[a + 1]):
            if conv[b] != NONE and conv[b] > out[b]:
                out[b] = conv[b]
        for p in range(pay_start[a], pay_start[a + 1]):
            b = prow[p]
            if pday[p] > out[b]:
                out[b] = pday[p]
        for b in range(bill_start[a], bill_start[a + 1]):
            if settle[b] == NONE:
                out[b] = NONE
    return out


# signals whose values are whole numbers: their sums over any bills are exact in any order
INTEGER_SIGNALS = (S_LAG1, S_LAG2, S_GRACE, S_BEYOND, S_LATE, S_DEPTH, S_LATE3, S_LATE30, S_MIN_ONLY, S_PART_PAID,
                   S_DAYS_EARLY, S_CURE_DAYS, S_CONVERTED, S_INSTALLMENT, S_EARLY)


@njit(inline="always")
def _signals(sig, i, T, g, settle, conv, due, amount, min_due, is_stmt, lim_at_stmt, has_parent, bpaid,
             penalty_rate):
    """Every per-bill signal of bill i as of T, into sig (a row of the account's signal table)."""
    st = settle[i]
    settled = st <= T
    converted = conv[i] <= T
    lag = st - due[i]
    dpd = T - due[i]
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
    sig[S_MIN_ONLY] = 1.0 if (is_stmt[i] and settled and not converted and bpaid < amount[i] - 0.005) else 0.0
    sig[S_PART_PAID] = 1.0 if ((not settled) and bpaid > 0 and bpaid < min_due[i]) else 0.0
    sig[S_DAYS_EARLY] = max(-lag, 0) if settled else np.nan
    sig[S_CURE_DAYS] = lag if (settled and lag >= 1) else np.nan
    sig[S_PENALTY] = penalty_rate * min_due[i] * days_late if days_late > g else 0.0
    sig[S_CONVERTED] = 1.0 if converted else 0.0
    sig[S_INSTALLMENT] = 1.0 if has_parent[i] else 0.0
    sig[S_AMOUNT] = amount[i]
    sig[S_EARLY] = 1.0 if (settled and lag <= -1) else 0.0


@njit(parallel=True, cache=True)
def build(bill_start, pay_start, lim_start, grace, open_day, due, stmt, amount, min_due, conv, settle, stable,
          is_stmt, has_parent, lim_at_stmt, pday, pamt, prow, leff, lval, days, blk_row, penalty_rate, win_kind,
          win_size, feat_win, feat_sig, feat_agg, feat_prefix, feat_col, state_col, out, aux):
    """Fill the windowed features and STATE of every (as-of date, open account) row in one pass.

    Output goes straight into its final place: column c of row r is out[c, r] for c >= 0, aux[-c-1, r] for
    helper columns (c < 0). Every window is a newest-first run of the bills due by T (the last N bills, the
    last N statements, the bills due in the last D days): bills lo..hi-1 of the account, statements only for
    a statement window. A bill's signals stop changing once it is stable (settled, converted if ever, all
    its payments made: `stable`); the account's signal table keeps them, and for whole-number signals
    (feat_prefix) running sums over the oldest bills while all of them are stable, so a count over a window
    is a difference of two running sums plus the few newest, still changing bills. Dates ascend, so what is
    stable at one date stays stable at the next. Sums of fractions are added newest first, as they always
    were, so every value is the same to the last bit."""
    n_acc = len(bill_start) - 1
    n_t = len(days)
    n_f = len(feat_sig)
    n_w = len(win_kind)
    n_blocks = (n_acc + BLOCK - 1) // BLOCK
    # the signals kept as running sums: over all bills, over statements only
    use_all = np.zeros(N_SIGNALS, dtype=np.bool_)
    use_st = np.zeros(N_SIGNALS, dtype=np.bool_)
    for j in range(n_f):
        if feat_prefix[j]:
            if win_kind[feat_win[j]] == 1:
                use_st[feat_sig[j]] = True
            else:
                use_all[feat_sig[j]] = True
    sums_all = np.flatnonzero(use_all)
    sums_st = np.flatnonzero(use_st)
    for blk in prange(n_blocks):
        a0 = blk * BLOCK
        a1 = min(n_acc, a0 + BLOCK)
        most = 1
        for a in range(a0, a1):
            most = max(most, bill_start[a + 1] - bill_start[a])
        paid = np.zeros(most)
        sigs = np.zeros((most, N_SIGNALS))
        # running sums / counts of non-missing values over the oldest bills, all bills and statements only
        sum_all = np.zeros((most + 1, N_SIGNALS))
        cnt_all = np.zeros((most + 1, N_SIGNALS))
        sum_st = np.zeros((most + 1, N_SIGNALS))
        cnt_st = np.zeros((most + 1, N_SIGNALS))
        lo_w = np.zeros(n_w, dtype=np.int64)
        row = blk_row[:, blk].copy()
        # rows are staged for SUB accounts at a time, then copied out column by column: written straight
        # to (dates x columns) places far apart, every row of every date would miss the cache and the TLB
        stage = np.empty((n_t, n_f + N_STATE, SUB))
        fill = np.zeros(n_t, dtype=np.int64)
        for a in range(a0, a1):
            b0, b1 = bill_start[a], bill_start[a + 1]
            p0, p1 = pay_start[a], pay_start[a + 1]
            paid[: b1 - b0] = 0.0
            pp = p0
            nb = 0
            pl = 0  # bills b0 .. b0+pl-1 are stable, their signals and running sums kept
            # over the stable bills: the newest late one, the newest not paid on time (-1: none), the
            # longest on-time run, and the on-time run ending at the newest stable bill
            last_late = -1
            last_miss = -1
            best_run = 0.0
            trail = 0.0
            g = grace[a]
            for t in range(n_t):
                T = days[t]
                while pp < p1 and pday[pp] <= T:
                    paid[prow[pp] - b0] += pamt[pp]
                    pp += 1
                while b0 + nb < b1 and due[b0 + nb] <= T:
                    nb += 1
                if open_day[a] > T:  # not open yet: no row
                    continue
                r = fill[t]
                fill[t] += 1
                while pl < nb and stable[b0 + pl] <= T:
                    i = b0 + pl
                    sg = sigs[pl]
                    _signals(sg, i, T, g, settle, conv, due, amount, min_due, is_stmt, lim_at_stmt, has_parent,
                             paid[pl], penalty_rate)
                    for s in sums_all:
                        v = sg[s]
                        ok = not np.isnan(v)
                        sum_all[pl + 1, s] = sum_all[pl, s] + (v if ok else 0.0)
                        cnt_all[pl + 1, s] = cnt_all[pl, s] + (1.0 if ok else 0.0)
                    stmt_i = is_stmt[i]
                    for s in sums_st:
                        v = sg[s]
                        ok = stmt_i and not np.isnan(v)
                        sum_st[pl + 1, s] = sum_st[pl, s] + (v if ok else 0.0)
                        cnt_st[pl + 1, s] = cnt_st[pl, s] + (1.0 if ok else 0.0)
                    lag_i = settle[i] - due[i]
                    if lag_i >= 1:  # settled, so late means paid late
                        last_late = pl
                    if lag_i <= 0:
                        trail += 1
                        best_run = max(best_run, trail)
                    else:
                        last_miss = pl
                        trail = 0.0
                    pl += 1
                for q in range(pl, nb):  # due but still changing: as of T
                    _signals(sigs[q], b0 + q, T, g, settle, conv, due, amount, min_due, is_stmt, lim_at_stmt,
                             has_parent, paid[q], penalty_rate)
                # each window's oldest bill (relative to b0); the newest is nb - 1
                for w in range(n_w):
                    kind = win_kind[w]
                    size = win_size[w]
                    if kind == 0:
                        lo_w[w] = max(0, nb - max(size, 0))
                    elif kind == 1:
                        lo = nb
                        seen = 0
                        while lo > 0 and seen < size:
                            lo -= 1
                            if is_stmt[b0 + lo]:
                                seen += 1
                        lo_w[w] = lo
                    else:
                        lo = nb
                        while lo > 0 and T - due[b0 + lo - 1] < size:
                            lo -= 1
                        lo_w[w] = lo
                for j in range(n_f):
                    w = feat_win[j]
                    lo = lo_w[w]
                    s = feat_sig[j]
                    ag = feat_agg[j]
                    only_st = win_kind[w] == 1
                    acc = 0.0
                    cnt = 0.0
                    if feat_prefix[j]:
                        top = nb
                        if lo < pl:  # the stable part by running sums, the rest bill by bill
                            if only_st:
                                acc = sum_st[pl, s] - sum_st[lo, s]
                                cnt = cnt_st[pl, s] - cnt_st[lo, s]
                            else:
                                acc = sum_all[pl, s] - sum_all[lo, s]
                                cnt = cnt_all[pl, s] - cnt_all[lo, s]
                            lo = pl
                        for q in range(lo, top):
                            if only_st and not is_stmt[b0 + q]:
                                continue
                            v = sigs[q, s]
                            if not np.isnan(v):
                                acc += v
                                cnt += 1
                    else:
                        for q in range(nb - 1, lo - 1, -1):  # newest first
                            if only_st and not is_stmt[b0 + q]:
                                continue
                            v = sigs[q, s]
                            if np.isnan(v):
                                continue
                            if ag == A_MAX:
                                if cnt == 0 or v > acc:
                                    acc = v
                            elif ag == A_MIN:
                                if cnt == 0 or v < acc:
                                    acc = v
                            else:
                                acc += v
                            cnt += 1
                    if ag == A_MEAN:
                        v = acc / cnt if cnt > 0 else np.nan
                    elif ag == A_MAX or ag == A_MIN:  # noqa: SIM109 (plain compares compile simplest in numba)
                        v = acc if cnt > 0 else np.nan
                    else:
                        v = acc
                    stage[t, j, r] = v
                # state: depth now, since late, streaks, balance: bill by bill over the bills not yet stable,
                # newest first, then what is kept for the stable ones (settled: they add no depth, no balance)
                dpd_now = 0.0
                since_late = -1.0
                days_since = np.nan
                streak = -1.0
                run = 0.0
                longest = 0.0
                balance = 0.0
                for i in range(b0 + nb - 1, b0 + pl - 1, -1):
                    st = settle[i]
                    settled = st <= T
                    lag = st - due[i]
                    dpd = T - due[i]
                    late = (settled and lag >= 1) or ((not settled) and dpd >= 1)
                    if not settled:
                        dpd_now = max(dpd_now, float(dpd))
                        if conv[i] > T:
                            balance += max(amount[i] - paid[i - b0], 0.0)
                    if late and since_late < 0:
                        since_late = float(b0 + nb - 1 - i)
                        days_since = float(dpd)
                    if settled and lag <= 0:
                        run += 1
                        longest = max(longest, run)
                    else:
                        if streak < 0:
                            streak = float(b0 + nb - 1 - i)
                        run = 0.0
                if pl > 0:
                    if since_late < 0 and last_late >= 0:
                        since_late = float(nb - 1 - last_late)
                        days_since = float(T - due[b0 + last_late])
                    if streak < 0 and last_miss >= 0:
                        streak = float(nb - 1 - last_miss)
                    longest = max(longest, run + trail, best_run)
                for i in range(b0 + nb, b1):  # issued but not yet due: part of the balance
                    if stmt[i] <= T and settle[i] > T and conv[i] > T:
                        balance += max(amount[i] - paid[i - b0], 0.0)
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
                stage[t, n_f + 0, r] = dpd_now
                stage[t, n_f + 1, r] = since_late
                stage[t, n_f + 2, r] = days_since
                stage[t, n_f + 3, r] = streak if streak >= 0 else float(nb)
                stage[t, n_f + 4, r] = longest
                stage[t, n_f + 5, r] = float(nb)
                stage[t, n_f + 6, r] = balance
                stage[t, n_f + 7, r] = lim_now
                stage[t, n_f + 8, r] = changes
                stage[t, n_f + 9, r] = lim_prev
            if a == a1 - 1 or (a - a0 + 1) % SUB == 0:  # flush the staged rows
                for t in range(n_t):
                    n = fill[t]
                    for q in range(n_f + N_STATE):
                        c = feat_col[q] if q < n_f else state_col[q - n_f]
                        dst = out[c] if c >= 0 else aux[-c - 1]
                        r0 = row[t]
                        for m in range(n):
                            dst[r0 + m] = stage[t, q, m]
                    row[t] += n
                    fill[t] = 0


@njit(cache=True)
def _pairwise(x, lo, n):
    """numpy's pairwise sum of x[lo:lo+n] (the order numpy's add.reduce/reduceat adds in), bit for bit."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += x[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
        r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
        i = 8
        last = n - n % 8
        while i < last:
            r0 += x[lo + i]
            r1 += x[lo + i + 1]
            r2 += x[lo + i + 2]
            r3 += x[lo + i + 3]
            r4 += x[lo + i + 4]
            r5 += x[lo + i + 5]
            r6 += x[lo + i + 6]
            r7 += x[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += x[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(x, lo, n2) + _pairwise(x, lo + n2, n - n2)


@njit(cache=True)
def group_sum(x, lo, n):
    """np.add.reduceat's sum of the segment x[lo:lo+n] (n >= 1): the first value plus the pairwise sum of
    the rest."""
    if n == 1:
        return x[lo]
    return x[lo] + _pairwise(x, lo + 1, n - 1)


@njit(parallel=True, cache=True)
def account_rows(days, row_off, a_idx, n_acc):
    """Each account's output row at each date (n_dates, n_accounts), -1 where it is not open."""
    rows = np.full((len(days), n_acc), -1, dtype=np.int64)
    for t in prange(len(days)):
        for r in range(row_off[t], row_off[t + 1]):
            rows[t, a_idx[r]] = r
    return rows


@njit(parallel=True, cache=True)
def customer(order, group_start, rows, is_installment, dpd, balance, cols, out):
    """The customer's other accounts, per (date, open account) row: cols are the output rows of
    cust_accounts, cust_active_loans, cust_loan_balance, cust_other_dpd_now (-1: not wanted). order lists
    accounts by customer (account order within one); group_start the customers' runs; rows from
    account_rows. Sums of amounts are numpy's reduceat sums over each customer's accounts (closed ones
    adding 0), bit for bit."""
    n_t, n_acc = rows.shape
    vals = np.zeros(max(n_acc, 1))  # customers' runs are disjoint: one slot per account serves every date
    n_groups = len(group_start) - 1
    for g in prange(n_groups):
        s0, s1 = group_start[g], group_start[g + 1]
        for t in range(n_t):
            pos = rows[t]
            n_open = 0.0
            loans = 0.0
            top = -np.inf
            n_top = 0
            for s in range(s0, s1):
                a = order[s]
                p = pos[a]
                v = 0.0
                if p >= 0:
                    n_open += 1.0
                    b = balance[p]
                    if is_installment[a] and b > 0:
                        loans += 1.0
                        v = b
                    d = dpd[p]
                    if d > top:
                        top = d
                        n_top = 1
                    elif d == top:
                        n_top += 1
                vals[s] = v
            if n_open == 0.0:
                continue
            loan_balance = group_sum(vals, s0, s1 - s0)
            second = -np.inf
            for s in range(s0, s1):
                p = pos[order[s]]
                if p >= 0 and dpd[p] != top and dpd[p] > second:
                    second = dpd[p]
            for s in range(s0, s1):
                p = pos[order[s]]
                if p < 0:
                    continue
                if cols[0] >= 0:
                    out[cols[0], p] = n_open
                if cols[1] >= 0:
                    out[cols[1], p] = loans
                if cols[2] >= 0:
                    out[cols[2], p] = loan_balance
                if cols[3] >= 0:
                    if n_open - 1.0 > 0:
                        other = second if (dpd[p] == top and n_top < 2) else top
                        out[cols[3], p] = other if np.isfinite(other) else np.nan
                    else:
                        out[cols[3], p] = np.nan


@njit(parallel=True, cache=True)
def others(order, group_start, rows, src, src_rows, day_exact, month_precision, cols, out):
    """For each j, a whole-number count of each account's own bills in row src_rows[j] of src: the sum over
    the customer's other accounts open at the date into output row cols[j] (0 when there are none; exact in
    any order). A day-exact count (day_exact[j]) is unknown for a month-precision account: so is every sum
    it enters (NaN)."""
    n_t = rows.shape[0]
    for g in prange(len(group_start) - 1):
        s0, s1 = group_start[g], group_start[g + 1]
        for t in range(n_t):
            pos = rows[t]
            for j in range(len(src_rows)):
                k = src_rows[j]
                total = 0.0
                for s in range(s0, s1):
                    a = order[s]
                    p = pos[a]
                    if p >= 0:
                        total += np.nan if (day_exact[j] and month_precision[a]) else src[k, p]
                for s in range(s0, s1):
                    a = order[s]
                    p = pos[a]
                    if p >= 0:
                        out[cols[j], p] = total - (np.nan if (day_exact[j] and month_precision[a]) else src[k, p])


@njit(parallel=True, cache=True)
def finish(days, row_off, a_idx, open_day, is_installment, month_precision, util3, util12, balance, limit, prev,
           cols, macro_cols, macro_vals, day_cols, out):
    """Per row: util_trend, util_now, limit_ratio_d360, tenure_days, is_installment (cols, -1: not wanted),
    each macro indicator's value at the row's date (macro_vals[k, t] into row macro_cols[k]), and day-exact
    features (day_cols) missing for month-precision accounts."""
    for t in range(len(days)):
        T = days[t]
        for r in prange(row_off[t], row_off[t + 1]):
            a = a_idx[r]
            if cols[0] >= 0:
                out[cols[0], r] = util3[r] - util12[r]
            if cols[1] >= 0:
                out[cols[1], r] = balance[r] / limit[r] if limit[r] > 0 else np.nan
            if cols[2] >= 0:
                out[cols[2], r] = limit[r] / prev[r] if prev[r] > 0 else np.nan
            if cols[3] >= 0:
                out[cols[3], r] = float(T - open_day[a])
            if cols[4] >= 0:
                out[cols[4], r] = 1.0 if is_installment[a] else 0.0
            for k in range(len(macro_cols)):
                out[macro_cols[k], r] = macro_vals[k, t]
            if month_precision[a]:
                for c in day_cols:
                    out[c, r] = np.nan
