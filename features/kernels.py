"""Compiled one-pass kernels over tables sorted by account and date.

Why a kernel: every feature of the catalog, for every account and every as-of date, comes out of one
walk over each account's bills (newest first) with its payments and limits advanced by pointers, so the
cost is one pass over the rows, not one pass per feature. Dates are int64 days since 1970-01-01 here;
NONE marks "never" (a bill never settled, a statement never converted).

The kernels take named records (namedtuples of arrays, which numba compiles as plain structs): the
history (`Accounts`, `Bills`, `Payments`, `Limits`), the rows to build (`Layout`), what to compute
(`Plan`) and where to put it (`Output`). Per-bill signals and per-account state are written by name into
slots derived from the catalog's declarations (features.catalog.SIGNALS and ACCOUNT_STATE); what the walk
carries from one as-of date to the next for an account is one record, `AccountState`.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from features.catalog import ACCOUNT_STATE, SIGNALS

NONE = np.int64(1) << 40  # a day that never comes
BLOCK = 2048  # accounts per parallel work unit: scratch is allocated once per block
SUB = 64  # accounts whose output rows are staged together before they are copied out
# a NaN no computation makes: the state slots of a fresh stage hold it, so a slot the kernel never writes
# shows in the output (tests look for it)
UNWRITTEN_BITS = 0x7FF80000DEADBEEF
UNWRITTEN = np.array([UNWRITTEN_BITS], dtype=np.int64).view(np.float64)[0]


def _slots(name: str, names) -> type:
    """A namedtuple class of slot numbers, its fields in name order. Numba compiles `slots.lag1` to a field
    position and caches the kernel keyed on this file alone: with the fields in name order that position
    stays right whatever order the catalog declares them in, and the slot numbers are run-time values."""
    return namedtuple(name, sorted(names))


SignalSlots = _slots("SignalSlots", SIGNALS)
StateSlots = _slots("StateSlots", ACCOUNT_STATE)
SIGNAL = SignalSlots(**{name: i for i, name in enumerate(SIGNALS)})  # slot = position in the catalog
STATE = StateSlots(**{name: i for i, name in enumerate(ACCOUNT_STATE)})
# whole-number signals: their sums over any bills are exact in any order
INTEGER_SIGNALS = frozenset({"lag1", "lag2", "late_within_grace", "late_beyond_grace", "late", "depth", "late3",
                             "late30", "min_only", "part_paid", "days_early", "cure_days", "converted",
                             "installment", "early"})
AGG_CODE = {"count": 0, "sum": 1, "mean": 2, "max": 3, "min": 4}
A_COUNT, A_SUM, A_MEAN, A_MAX, A_MIN = range(5)
BILLS_WINDOW, STATEMENTS_WINDOW, DAYS_WINDOW = range(3)  # features.catalog's window kinds

# ------------------------------------------------------------------------------------------- records
# Rows of bills, payments and limits run account by account: account a's are *_start[a] .. *_start[a + 1].

Accounts = namedtuple("Accounts", [
    "bill_start",  # first bill row of each account (n_accounts + 1)
    "payment_start",  # first payment row of each account (n_accounts + 1)
    "limit_start",  # first limit row of each account (n_accounts + 1)
    "grace_days",  # int64: days late that are not reported
    "open_day",  # the day the account opened
    "is_installment",  # a cash loan (else a revolving line)
    "month_precision",  # the source knows months only: day-exact features are missing
])
Bills = namedtuple("Bills", [
    "statement_day", "due_day",
    "amount_due", "min_due",
    "converted_day",  # the day a statement became installments, NONE if never
    "settled_day",  # the first day the payments reached min_due (or the conversion day), NONE if never
    "stable_day",  # from this day on the bill's signals no longer change (NONE if never settled)
    "is_statement",  # a revolving line's own statement (not an installment)
    "has_parent_bill",  # an installment of a converted statement
    "limit_at_statement",  # the limit in force on the statement day, NaN if none yet
])
Payments = namedtuple("Payments", ["day", "amount", "bill_row"])  # bill_row: the row of the bill it repays
Limits = namedtuple("Limits", ["effective_day", "value"])  # per account by effective day
History = namedtuple("History", ["accounts", "bills", "payments", "limits"])
Layout = namedtuple("Layout", [
    "days",  # the as-of days, ascending
    "day_start",  # each account's first entry in day_index (n_accounts + 1)
    "day_index",  # the account's as-of days to build (indices into days, ascending within an account)
    "by_date",  # rows date by date, accounts in order within a date (else account by account)
    "day_row",  # the output row of each entry of day_index
    "block_row",  # first output row of each (date, block of accounts); one date when not by_date
    "row_account",  # each output row's account
    "row_day",  # each output row's as-of day (index into days)
])
Plan = namedtuple("Plan", [
    "window_kind", "window_size",  # per window: catalog kind (bills, statements, days) and its n or d
    "feature_window", "feature_signal", "feature_agg",  # per windowed feature: window, signal slot, AGG_CODE
    "feature_running",  # a whole-number count, sum or mean: by running sums over the stable bills
    "feature_column", "state_column",  # output place of each feature and state slot (< 0: helper row -c-1)
    "running_all", "running_statements",  # signal slots kept as running sums: over all bills, statements only
    "penalty_rate",  # a day, on the overdue minimum
    "growth_cap",  # the most a bill's growth over the previous one reads (features.catalog.GROWTH_CAP)
])
Slots = namedtuple("Slots", ["signal", "state"])
SLOTS = Slots(SIGNAL, STATE)  # the named slots the kernel writes
Output = namedtuple("Output", ["columns", "helpers"])  # (columns, rows) float64: the frame's, and apart
Customers = namedtuple("Customers", ["order", "start"])  # accounts by customer; each customer's run in order
Derived = namedtuple("Derived", ["util_n3", "util_n12", "balance_now", "limit_now", "limit_prev_d360"])
OtherCounts = namedtuple("OtherCounts", ["helper_row", "day_exact", "reach", "column"])

# What the walk carries for one account from one as-of date to the next (allocated once per block, sized
# for its account with the most bills): enough to resume the walk at a later date.
AccountState = namedtuple("AccountState", [
    "paid",  # paid so far, per bill of the account
    "signals",  # per bill: its signals (final once stable, else as of the last date)
    "sum_all", "count_all",  # running sums and counts of non-missing values over the first k stable bills
    "sum_statements", "count_statements",  # the same over statements only
    "walk",  # one WALK record: the scalars below
])
WALK = np.dtype([
    ("next_payment", np.int64),  # the first payment row not yet made
    ("bills_due", np.int64),  # bills due so far (the newest is bills_due - 1, relative to the account)
    ("stable_bills", np.int64),  # bills 0 .. stable_bills - 1 are stable: signals and running sums kept
    ("last_late", np.int64),  # the newest stable bill paid late (-1: none)
    ("last_missed", np.int64),  # the newest stable bill not paid on time (-1: none)
    ("stable_run", np.float64),  # the on-time run ending at the newest stable bill
    ("longest_stable_run", np.float64),  # the longest on-time run among the stable bills
    ("late_stable_run", np.float64),  # the late run ending at the newest stable bill
])


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
def open_days(open_day, days):
    """Every as-of day each account is open on, as runs per account (Layout.day_start, .day_index): the
    rows of a build for all accounts."""
    n_acc, n_t = len(open_day), len(days)
    start = np.empty(n_acc + 1, dtype=np.int64)
    start[0] = 0
    for a in range(n_acc):
        start[a + 1] = start[a] + n_t - np.searchsorted(days, open_day[a])  # days on or after opening
    index = np.empty(start[n_acc], dtype=np.int64)
    for a in range(n_acc):
        first = n_t - (start[a + 1] - start[a])
        for k in range(start[a + 1] - start[a]):
            index[start[a] + k] = first + k
    return start, index


@njit(cache=True)
def layout_rows(day_start, day_index, n_days, by_date, block):
    """Where each (account, as-of day) entry goes: date by date with accounts in order within a date
    (by_date), else account by account in entry order. Returns Layout's day_row, block_row, row_account and
    row_day."""
    n_acc, n_rows = len(day_start) - 1, len(day_index)
    n_blocks = max((n_acc + block - 1) // block, 1)
    n_b = n_days if by_date else 1
    first = np.zeros(n_b, dtype=np.int64)  # each date's first row
    if by_date:
        for e in range(n_rows):
            first[day_index[e]] += 1
        r = 0
        for t in range(n_b):
            r, first[t] = r + first[t], r
    fill = np.zeros(n_b, dtype=np.int64)
    day_row = np.empty(n_rows, dtype=np.int64)
    block_row = np.zeros((n_b, n_blocks), dtype=np.int64)
    row_account = np.empty(n_rows, dtype=np.int64)
    row_day = np.empty(n_rows, dtype=np.int64)
    for a in range(n_acc):
        if a % block == 0:
            for b in range(n_b):
                block_row[b, a // block] = first[b] + fill[b]
        for e in range(day_start[a], day_start[a + 1]):
            t = day_index[e]
            b = t if by_date else 0
            r = first[b] + fill[b]
            fill[b] += 1
            day_row[e] = r
            row_account[r] = a
            row_day[r] = t
    return day_row, block_row, row_account, row_day


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


@njit(inline="always")
def _signals(sig, i, b0, T, g, bills, bpaid, plan, s):
    """Every per-bill signal of bill i as of T, each into its named slot s.NAME of sig (a row of the
    account's signal table); b0 is the account's first bill row (its bills run in due order, so i - 1 is the
    previous bill when i > b0), g its grace days, bpaid what was paid on the bill by T."""
    st = bills.settled_day[i]
    due = bills.due_day[i]
    amount = bills.amount_due[i]
    min_due = bills.min_due[i]
    is_stmt = bills.is_statement[i]
    settled = st <= T
    converted = bills.converted_day[i] <= T
    lag = st - due
    dpd = T - due
    late = (settled and lag >= 1) or ((not settled) and dpd >= 1)
    depth = max(lag, 0) if settled else dpd
    days_late = lag if settled else dpd
    sig[s.lag1] = 1.0 if (settled and lag == 1) else 0.0
    sig[s.lag2] = 1.0 if (settled and lag == 2) else 0.0
    sig[s.late_within_grace] = 1.0 if (settled and lag >= 1 and lag <= g) else 0.0
    sig[s.late_beyond_grace] = 1.0 if days_late > g else 0.0
    sig[s.late] = 1.0 if late else 0.0
    sig[s.depth] = depth
    sig[s.late3] = 1.0 if depth >= 3 else 0.0
    sig[s.late30] = 1.0 if depth >= 30 else 0.0
    if amount > 0 and not converted:
        sig[s.paid_ratio] = min(bpaid, amount) / amount
    else:
        sig[s.paid_ratio] = np.nan
    if is_stmt and bills.limit_at_statement[i] > 0:
        sig[s.util] = amount / bills.limit_at_statement[i]
    else:
        sig[s.util] = np.nan
    sig[s.min_only] = 1.0 if (is_stmt and settled and not converted and bpaid < amount - 0.005) else 0.0
    sig[s.part_paid] = 1.0 if ((not settled) and bpaid > 0 and bpaid < min_due) else 0.0
    sig[s.days_early] = max(-lag, 0) if settled else np.nan
    sig[s.cure_days] = lag if (settled and lag >= 1) else np.nan
    sig[s.penalty] = plan.penalty_rate * min_due * days_late if days_late > g else 0.0
    sig[s.converted] = 1.0 if converted else 0.0
    sig[s.installment] = 1.0 if bills.has_parent_bill[i] else 0.0
    sig[s.amount] = amount
    sig[s.early] = 1.0 if (settled and lag <= -1) else 0.0
    sig[s.paid_share] = bpaid / amount if (amount > 0 and not converted) else np.nan
    prev = bills.amount_due[i - 1] if i > b0 else 0.0
    sig[s.paid_prev] = bpaid / prev if (prev > 0 and not converted) else np.nan
    sig[s.growth] = min(amount / prev - 1.0, plan.growth_cap) if prev > 0 else np.nan
    sig[s.util_change] = _util_change(i, b0, bills) if is_stmt else np.nan


@njit(inline="always")
def _util_change(i, b0, bills):
    """Util of statement i minus util of the account's previous statement (NaN without both): back past the
    installments of a converted statement, which sit between a line's statements."""
    j = i - 1
    while j >= b0 and not bills.is_statement[j]:
        j -= 1
    lim = bills.limit_at_statement[i]
    lim_prev = bills.limit_at_statement[j] if j >= b0 else np.nan
    if lim > 0 and lim_prev > 0:
        return bills.amount_due[i] / lim - bills.amount_due[j] / lim_prev
    return np.nan


@njit(cache=True)
def new_state(most_bills, n_signals):
    """An AccountState for accounts of up to most_bills bills."""
    walk = np.zeros(1, dtype=WALK)
    return AccountState(np.zeros(most_bills), np.zeros((most_bills, n_signals)),
                        np.zeros((most_bills + 1, n_signals)), np.zeros((most_bills + 1, n_signals)),
                        np.zeros((most_bills + 1, n_signals)), np.zeros((most_bills + 1, n_signals)), walk)


@njit(inline="always")
def _start_account(state, accounts, a):
    """The state of account a before its first day: nothing paid, due or stable yet."""
    state.paid[: accounts.bill_start[a + 1] - accounts.bill_start[a]] = 0.0
    w = state.walk[0]
    w.next_payment = accounts.payment_start[a]
    w.bills_due = 0
    w.stable_bills = 0
    w.last_late = -1
    w.last_missed = -1
    w.stable_run = 0.0
    w.longest_stable_run = 0.0
    w.late_stable_run = 0.0


@njit(inline="always")
def _advance(state, history, a, T):
    """Payments made by T into the bills' paid amounts; bills due by T counted."""
    b0, b1 = history.accounts.bill_start[a], history.accounts.bill_start[a + 1]
    p1 = history.accounts.payment_start[a + 1]
    pay = history.payments
    w = state.walk[0]
    pp = w.next_payment
    while pp < p1 and pay.day[pp] <= T:
        state.paid[pay.bill_row[pp] - b0] += pay.amount[pp]
        pp += 1
    w.next_payment = pp
    nb = w.bills_due
    while b0 + nb < b1 and history.bills.due_day[b0 + nb] <= T:
        nb += 1
    w.bills_due = nb


@njit(inline="always")
def _keep_stable(state, history, a, T, plan, signal):
    """Bills that are stable by T, oldest first: their signals are final, so they join the running sums and
    the streaks kept over stable bills, and are not visited again."""
    bills = history.bills
    b0 = history.accounts.bill_start[a]
    g = history.accounts.grace_days[a]
    w = state.walk[0]
    pl = w.stable_bills
    while pl < w.bills_due and bills.stable_day[b0 + pl] <= T:
        i = b0 + pl
        sg = state.signals[pl]
        _signals(sg, i, b0, T, g, bills, state.paid[pl], plan, signal)
        for s in plan.running_all:
            v = sg[s]
            ok = not np.isnan(v)
            state.sum_all[pl + 1, s] = state.sum_all[pl, s] + (v if ok else 0.0)
            state.count_all[pl + 1, s] = state.count_all[pl, s] + (1.0 if ok else 0.0)
        stmt_i = bills.is_statement[i]
        for s in plan.running_statements:
            v = sg[s]
            ok = stmt_i and not np.isnan(v)
            state.sum_statements[pl + 1, s] = state.sum_statements[pl, s] + (v if ok else 0.0)
            state.count_statements[pl + 1, s] = state.count_statements[pl, s] + (1.0 if ok else 0.0)
        lag = bills.settled_day[i] - bills.due_day[i]
        if lag >= 1:  # settled, so late means paid late
            w.last_late = pl
            w.late_stable_run += 1
        else:
            w.late_stable_run = 0.0
        if lag <= 0:
            w.stable_run += 1
            w.longest_stable_run = max(w.longest_stable_run, w.stable_run)
        else:
            w.last_missed = pl
            w.stable_run = 0.0
        pl += 1
    w.stable_bills = pl


@njit(inline="always")
def _window_starts(lo_w, history, a, T, nb, plan):
    """Each window's oldest bill (relative to the account's first) as of T; the newest is nb - 1."""
    b0 = history.accounts.bill_start[a]
    is_stmt = history.bills.is_statement
    due = history.bills.due_day
    for w in range(len(plan.window_kind)):
        kind = plan.window_kind[w]
        size = plan.window_size[w]
        if kind == BILLS_WINDOW:
            lo_w[w] = max(0, nb - max(size, 0))
        elif kind == STATEMENTS_WINDOW:
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


@njit(inline="always")
def _aggregate(state, is_stmt, b0, j, lo, nb, plan):
    """Feature j over the account's bills lo .. nb - 1 (relative to b0): the stable part of a running one
    by running sums, the rest bill by bill; max, min and fractions newest first, as they always were."""
    w = plan.feature_window[j]
    s = plan.feature_signal[j]
    ag = plan.feature_agg[j]
    only_st = plan.window_kind[w] == STATEMENTS_WINDOW
    pl = state.walk[0].stable_bills
    acc = 0.0
    cnt = 0.0
    if plan.feature_running[j]:
        if lo < pl:
            if only_st:
                acc = state.sum_statements[pl, s] - state.sum_statements[lo, s]
                cnt = state.count_statements[pl, s] - state.count_statements[lo, s]
            else:
                acc = state.sum_all[pl, s] - state.sum_all[lo, s]
                cnt = state.count_all[pl, s] - state.count_all[lo, s]
            lo = pl
        for q in range(lo, nb):
            if only_st and not is_stmt[b0 + q]:
                continue
            v = state.signals[q, s]
            if not np.isnan(v):
                acc += v
                cnt += 1
    else:
        for q in range(nb - 1, lo - 1, -1):  # newest first
            if only_st and not is_stmt[b0 + q]:
                continue
            v = state.signals[q, s]
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
        return acc / cnt if cnt > 0 else np.nan
    if ag == A_MAX or ag == A_MIN:  # noqa: SIM109 (plain compares compile simplest in numba)
        return acc if cnt > 0 else np.nan
    return acc


@njit(inline="always")
def _windowed(dst, lo_w, state, history, a, T, plan, signal):
    """Every windowed feature of account a as of T into dst: the signals of the bills due but not yet stable
    as of T, then each feature over its window."""
    b0 = history.accounts.bill_start[a]
    g = history.accounts.grace_days[a]
    nb = state.walk[0].bills_due
    for q in range(state.walk[0].stable_bills, nb):  # due but still changing: as of T
        _signals(state.signals[q], b0 + q, b0, T, g, history.bills, state.paid[q], plan, signal)
    _window_starts(lo_w, history, a, T, nb, plan)
    for j in range(len(plan.feature_signal)):
        dst[j] = _aggregate(state, history.bills.is_statement, b0, j, lo_w[plan.feature_window[j]], nb, plan)


@njit(inline="always")
def _delinquency_now(now, state, history, a, T, slot):
    """Depth now, since late, streaks, late run, bills due, days since the newest fell due and balance: bill by
    bill over the bills not yet stable, newest first, then what is kept for the stable ones (settled: they add
    no depth, no balance)."""
    bills = history.bills
    b0, b1 = history.accounts.bill_start[a], history.accounts.bill_start[a + 1]
    w = state.walk[0]
    nb, pl = w.bills_due, w.stable_bills
    dpd_now = 0.0
    since_late = -1.0
    days_since = np.nan
    streak = -1.0
    late_run = -1.0
    run = 0.0
    longest = 0.0
    balance = 0.0
    for i in range(b0 + nb - 1, b0 + pl - 1, -1):
        st = bills.settled_day[i]
        settled = st <= T
        lag = st - bills.due_day[i]
        dpd = T - bills.due_day[i]
        late = (settled and lag >= 1) or ((not settled) and dpd >= 1)
        if not settled:
            dpd_now = max(dpd_now, float(dpd))
            if bills.converted_day[i] > T:
                balance += max(bills.amount_due[i] - state.paid[i - b0], 0.0)
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
        if not late and late_run < 0:
            late_run = float(b0 + nb - 1 - i)
    if pl > 0:
        if since_late < 0 and w.last_late >= 0:
            since_late = float(nb - 1 - w.last_late)
            days_since = float(T - bills.due_day[b0 + w.last_late])
        if streak < 0 and w.last_missed >= 0:
            streak = float(nb - 1 - w.last_missed)
        longest = max(longest, run + w.stable_run, w.longest_stable_run)
    for i in range(b0 + nb, b1):  # issued but not yet due: part of the balance
        if bills.statement_day[i] <= T and bills.settled_day[i] > T and bills.converted_day[i] > T:
            balance += max(bills.amount_due[i] - state.paid[i - b0], 0.0)
    now[slot.dpd_now] = dpd_now
    now[slot.bills_since_late] = since_late
    now[slot.days_since_late] = days_since
    now[slot.ontime_streak] = streak if streak >= 0 else float(nb)
    now[slot.longest_ontime_streak] = longest
    # every bill not yet stable late: the run goes on into the stable ones
    now[slot.late_run] = late_run if late_run >= 0 else float(nb - pl) + w.late_stable_run
    now[slot.bills_due] = float(nb)
    now[slot.days_since_due] = float(T - bills.due_day[b0 + nb - 1]) if nb > 0 else np.nan
    now[slot.balance_now] = balance


@njit(inline="always")
def _limits_now(now, history, a, T, slot):
    """The limit in force at T, a year before, and the changes in between."""
    lim = history.limits
    l0, l1 = history.accounts.limit_start[a], history.accounts.limit_start[a + 1]
    lim_now = np.nan
    lim_prev = np.nan
    changes = 0.0
    for j in range(l0, l1):
        if lim.effective_day[j] <= T:
            lim_now = lim.value[j]
            if lim.effective_day[j] > T - 360 and j > l0:
                changes += 1
        if lim.effective_day[j] <= T - 360:
            lim_prev = lim.value[j]
    now[slot.limit_now] = lim_now
    now[slot.limit_changes_d360] = changes
    now[slot.limit_prev_d360] = lim_prev


@njit(inline="always")
def _new_stage(layout, plan, blk, a0, a1):
    """Staged rows of a block's SUB accounts at a time, (date or 0, column, row), with the state slots
    UNWRITTEN; how many are staged per date, and the next output row per date."""
    n_cols = len(plan.feature_column) + len(plan.state_column)
    if layout.by_date:
        n_b, cap = len(layout.days), SUB
    else:  # one run of rows: the most entries of any SUB accounts of the block
        n_b, cap = 1, 1
        for g0 in range(a0, a1, SUB):
            g1 = min(a1, g0 + SUB)
            cap = max(cap, layout.day_start[g1] - layout.day_start[g0])
    stage = np.empty((n_b, n_cols, cap))
    stage[:, len(plan.feature_column):, :] = UNWRITTEN
    return stage, np.zeros(n_b, dtype=np.int64), layout.block_row[:, blk].copy()


@njit(inline="always")
def _flush(stage, fill, next_row, plan, output):
    """The staged rows to their places: column by column, each date's rows one contiguous run."""
    n_f = len(plan.feature_column)
    for b in range(stage.shape[0]):
        n = fill[b]
        if n == 0:
            continue
        r0 = next_row[b]
        for q in range(stage.shape[1]):
            c = plan.feature_column[q] if q < n_f else plan.state_column[q - n_f]
            dst = output.columns[c] if c >= 0 else output.helpers[-c - 1]
            for m in range(n):
                dst[r0 + m] = stage[b, q, m]
        next_row[b] += n
        fill[b] = 0


Scratch = namedtuple("Scratch", ["state", "stage", "fill", "next_row", "window_start"])


@njit(cache=True)
def _block(blk, history, layout, plan, slots, output):
    """The rows of one block of accounts: its scratch allocated once, then the walk."""
    acc = history.accounts
    a0 = blk * BLOCK
    a1 = min(len(acc.bill_start) - 1, a0 + BLOCK)
    most = 1
    for a in range(a0, a1):
        most = max(most, acc.bill_start[a + 1] - acc.bill_start[a])
    # rows are staged for SUB accounts at a time, then copied out column by column: written straight
    # to (dates x columns) places far apart, every row of every date would miss the cache and the TLB
    stage, fill, next_row = _new_stage(layout, plan, blk, a0, a1)
    scratch = Scratch(new_state(most, len(slots.signal)), stage, fill, next_row,
                      np.zeros(len(plan.window_kind), dtype=np.int64))
    _walk(a0, a1, history, layout, plan, slots, scratch, output)


@njit(cache=True, _nrt=False)
def _walk(a0, a1, history, layout, plan, slots, scratch, output):
    """Accounts a0 .. a1 - 1, each walked once over its as-of days, ascending. Compiled without reference
    counting (it allocates nothing; its caller holds every array): the named records passed to the inlined
    steps would otherwise cost an atomic count per array per step, more than the step itself."""
    state, stage, fill = scratch.state, scratch.stage, scratch.fill
    n_f = len(plan.feature_column)
    for a in range(a0, a1):
        _start_account(state, history.accounts, a)
        for e in range(layout.day_start[a], layout.day_start[a + 1]):
            t = layout.day_index[e]
            T = layout.days[t]
            b = t if layout.by_date else 0
            m = fill[b]
            fill[b] += 1
            _advance(state, history, a, T)
            _keep_stable(state, history, a, T, plan, slots.signal)
            _windowed(stage[b, :n_f, m], scratch.window_start, state, history, a, T, plan, slots.signal)
            now = stage[b, n_f:, m]
            _delinquency_now(now, state, history, a, T, slots.state)
            _limits_now(now, history, a, T, slots.state)
        if a == a1 - 1 or (a - a0 + 1) % SUB == 0:
            _flush(stage, fill, scratch.next_row, plan, output)


@njit(cache=True)
def build(history, layout, plan, slots, output):
    """Fill the windowed features and the account state of every row of the layout in one pass.

    Every window is a newest-first run of the bills due by T (the last N bills, the last N statements, the
    bills due in the last D days). A bill's signals stop changing once it is stable (settled, converted if
    ever, all its payments made); the account's signal table keeps them, and for whole-number signals
    (plan.feature_running) running sums over the oldest bills while all of them are stable, so a count over
    a window is a difference of two running sums plus the few newest, still changing bills. An account's
    days ascend, so what is stable at one date stays stable at the next, and a row depends only on its
    account and day, not on the other rows built. Sums of fractions are added newest first, as they always
    were, so every value is the same to the last bit."""
    _blocks(history.accounts, history.bills, history.payments, history.limits, layout, plan, slots.signal,
            slots.state, output)


@njit(parallel=True, cache=True)
def _blocks(accounts, bills, payments, limits, layout, plan, signal, state, output):
    """Blocks of accounts in parallel. Numba's parallel loops take records of arrays that are arguments, not
    records of records: hence the history and the slots apart here, put together again per block."""
    n_blocks = (len(accounts.bill_start) - 1 + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        _block(blk, History(accounts, bills, payments, limits), layout, plan, Slots(signal, state), output)


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


@njit(inline="always")
def _next_day(customers, s0, s1, layout, cursor, pos):
    """The next as-of day (index) at which one of the customer's accounts s0 .. s1 (positions in
    customers.order) has a row: each account's row at it into pos (-1: none), cursors past it. -1 when the
    customer's rows are all done."""
    t = -1
    for s in range(s0, s1):
        k = cursor[s]
        if k < layout.day_start[customers.order[s] + 1]:
            d = layout.day_index[k]
            if t < 0 or d < t:
                t = d
    if t < 0:
        return t
    for s in range(s0, s1):
        k = cursor[s]
        if k < layout.day_start[customers.order[s] + 1] and layout.day_index[k] == t:
            pos[s] = layout.day_row[k]
            cursor[s] = k + 1
        else:
            pos[s] = -1
    return t


@njit(inline="always")
def _customer_run(customers, g, layout, cursor):
    """Customer g's run s0 .. s1 in customers.order, with each account's cursor at its first row."""
    s0, s1 = customers.start[g], customers.start[g + 1]
    for s in range(s0, s1):
        cursor[s] = layout.day_start[customers.order[s]]
    return s0, s1


@njit(parallel=True, cache=True)
def customer(customers, layout, close_day, is_installment, dpd, balance, cols, out):
    """The customer's other accounts, per row: cols are the output rows of cust_accounts, cust_active_loans,
    cust_loan_balance, cust_other_dpd_now (-1: not wanted). The layout holds, at each row's day, a row of
    every account of its customer open then; an account closed by its holder or repaid (close_day on or
    before the day) no longer counts. Sums of amounts are numpy's reduceat sums over each customer's
    accounts (closed ones adding 0), bit for bit."""
    n_acc = len(customers.order)
    # customers' runs are disjoint: one slot per account serves every day
    vals = np.zeros(max(n_acc, 1))
    pos = np.empty(n_acc, dtype=np.int64)
    cursor = np.empty(n_acc, dtype=np.int64)
    for g in prange(len(customers.start) - 1):
        s0, s1 = _customer_run(customers, g, layout, cursor)
        while True:
            t = _next_day(customers, s0, s1, layout, cursor, pos)
            if t < 0:
                break
            T = layout.days[t]
            n_open = 0.0
            loans = 0.0
            top = -np.inf
            n_top = 0
            for s in range(s0, s1):
                a = customers.order[s]
                p = pos[s]
                v = 0.0
                if p >= 0 and close_day[a] > T:
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
            loan_balance = group_sum(vals, s0, s1 - s0)
            second = -np.inf
            for s in range(s0, s1):
                p = pos[s]
                if p >= 0 and close_day[customers.order[s]] > T and dpd[p] != top and dpd[p] > second:
                    second = dpd[p]
            for s in range(s0, s1):
                p = pos[s]
                if p < 0:
                    continue
                counted = close_day[customers.order[s]] > T
                if cols[0] >= 0:
                    out[cols[0], p] = n_open
                if cols[1] >= 0:
                    out[cols[1], p] = loans
                if cols[2] >= 0:
                    out[cols[2], p] = loan_balance
                if cols[3] >= 0:
                    if n_open - (1.0 if counted else 0.0) > 0:
                        other = second if (counted and dpd[p] == top and n_top < 2) else top
                        out[cols[3], p] = other if np.isfinite(other) else np.nan
                    else:
                        out[cols[3], p] = np.nan


@njit(parallel=True, cache=True)
def others(customers, layout, close_day, month_precision, src, wanted, out):
    """For each j of `wanted` (OtherCounts), a whole-number count of each account's own bills in helper row
    helper_row[j] of src: the sum over the customer's other accounts open at the day into output row
    column[j] (0 when there are none; exact in any order). An account closed by then (close_day) counts
    only if it closed in the last reach[j] days (-1: never). A day-exact count (day_exact[j]) is
    unknown for a month-precision account: so is every sum it enters (NaN)."""
    n_acc = len(customers.order)
    pos = np.empty(n_acc, dtype=np.int64)
    cursor = np.empty(n_acc, dtype=np.int64)
    for g in prange(len(customers.start) - 1):
        s0, s1 = _customer_run(customers, g, layout, cursor)
        while True:
            t = _next_day(customers, s0, s1, layout, cursor, pos)
            if t < 0:
                break
            T = layout.days[t]
            for j in range(len(wanted.helper_row)):
                k = wanted.helper_row[j]
                exact = wanted.day_exact[j]
                reach = wanted.reach[j]
                total = 0.0
                for s in range(s0, s1):
                    p = pos[s]
                    a = customers.order[s]
                    if p >= 0 and _counted(close_day[a], T, reach):
                        total += np.nan if (exact and month_precision[a]) else src[k, p]
                for s in range(s0, s1):
                    p = pos[s]
                    if p >= 0:
                        a = customers.order[s]
                        own = np.nan if (exact and month_precision[a]) else src[k, p]
                        counted = _counted(close_day[a], T, reach)
                        out[wanted.column[j], p] = total - (own if counted else 0.0)


@njit(inline="always")
def _counted(close_day, T, reach):
    """Whether an account counts among the customer's at T: open then, or closed in the last `reach` days
    (-1: closed accounts never count)."""
    return close_day > (T - reach if reach >= 0 else T)


@njit(parallel=True, cache=True)
def finish(layout, accounts, derived, cols, macro_cols, macro_vals, day_cols, out):
    """Per row: util_trend, util_now, limit_ratio_d360, tenure_days, is_installment (cols, -1: not wanted)
    from the Derived kernel columns, each macro indicator's value at the row's day (macro_vals[k, t] into row
    macro_cols[k]), and day-exact features (day_cols) missing for month-precision accounts."""
    for r in prange(len(layout.row_account)):
        a = layout.row_account[r]
        t = layout.row_day[r]
        if cols[0] >= 0:
            out[cols[0], r] = derived.util_n3[r] - derived.util_n12[r]
        if cols[1] >= 0:
            limit = derived.limit_now[r]
            out[cols[1], r] = derived.balance_now[r] / limit if limit > 0 else np.nan
        if cols[2] >= 0:
            prev = derived.limit_prev_d360[r]
            out[cols[2], r] = derived.limit_now[r] / prev if prev > 0 else np.nan
        if cols[3] >= 0:
            out[cols[3], r] = float(layout.days[t] - accounts.open_day[a])
        if cols[4] >= 0:
            out[cols[4], r] = 1.0 if accounts.is_installment[a] else 0.0
        for k in range(len(macro_cols)):
            out[macro_cols[k], r] = macro_vals[k, t]
        if accounts.month_precision[a]:
            for c in day_cols:
                out[c, r] = np.nan
