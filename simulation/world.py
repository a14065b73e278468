"""A synthetic Huabei/Jiebei credit world: customers, their hidden risk, and what a lender gets to see.

One chunk of customers at a time, month by month, vectorised over accounts:
  1. draw each customer's hidden type (risk, forgetfulness) and state path (a Markov chain moved by the
     published macro stress index);
  2. for every account with something due this month, draw the repayment outcome from the hidden state
     (early, on time, 1 or 2 days late, 3-27 days late, missed), how much is paid (full or minimum), how much
     was spent (utilisation), whether the statement is converted into installments, and whether accounts in
     arrears cure; charge off at 180+ days past due;
  3. review revolving limits under a baseline policy that sees only observed behaviour;
  4. turn the draws into the contract's tables (accounts, bills, payments, limits) and run the exact filter
     (`simulation.truth`) for the `truth` table.
Draws are keyed by (seed, stream, account or customer, month) -- see `simulation.rng` -- so a chunk's output
does not depend on which other chunks exist or in which process they run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulation import truth as truth_mod
from simulation.macro import month_starts, stress_path
from simulation.params import EARLY, LAG1, LATE, LATE_MIN, MISSED, UTIL_EDGES, WorldParams
from simulation.rng import categorical, uniforms

REVOLVING, INSTALLMENT = 0, 1
PRODUCTS = np.array(["revolving", "installment"])
MAX_MONTHS = 240  # bill ids reserve 8 bits for the month-of-conversion slot
LOAN_DUE_DAYS = (2, 20)  # cash-loan installments fall due on this day range (keeps 30 DPD inside a month)


class Stream:
    """Named random streams: one per kind of draw, so adding a draw never shifts another."""

    HOLDINGS, BAND, RISK, FORGET, STATE0, STATE = 1, 2, 3, 4, 5, 6
    OPEN, OPEN_DAY, DUE_DAY, GRACE, LIMIT, TERM, PRINCIPAL = 10, 11, 12, 13, 14, 15, 16
    OUTCOME, LATE_LAG, EARLY_LAG, MIN_ONLY, PARTS, PART_DAY = 20, 21, 22, 23, 24, 25
    UTIL, UTIL_IN, CONVERT, CONVERT_TERM, CONVERT_DAY, CURE, CURE_DAY = 26, 27, 28, 29, 30, 31, 32


@dataclass(frozen=True)
class Layout:
    """Which customer holds which accounts; account ids run 1..N in customer order."""

    account_id: np.ndarray
    customer_id: np.ndarray
    product: np.ndarray  # REVOLVING / INSTALLMENT

    @property
    def n_customers(self) -> int:
        return int(self.customer_id[-1]) if len(self.customer_id) else 0


def layout(n_accounts: int, seed: int, params: WorldParams) -> Layout:
    """Exactly `n_accounts` accounts: some customers hold a revolving line and a cash loan."""
    cust = np.arange(1, n_accounts + 1, dtype=np.int64)  # at most one account each: enough customers
    u = uniforms(seed, Stream.HOLDINGS, cust)
    two = u < params.two_product_share
    inst_only = ~two & (u < params.two_product_share + (1 - params.two_product_share) * params.installment_only_share)
    n_acc = np.where(two, 2, 1)
    ends = np.cumsum(n_acc)
    n_cust = int(np.searchsorted(ends, n_accounts) + 1)
    cust, n_acc, inst_only = cust[:n_cust], n_acc[:n_cust].copy(), inst_only[:n_cust]
    n_acc[-1] -= int(ends[n_cust - 1] - n_accounts)  # the last customer may keep one of two accounts
    customer_id = np.repeat(cust, n_acc)
    first = np.r_[True, customer_id[1:] != customer_id[:-1]]
    product = np.where(first, np.where(np.repeat(inst_only, n_acc), INSTALLMENT, REVOLVING), INSTALLMENT)
    return Layout(np.arange(1, n_accounts + 1, dtype=np.int64), customer_id, product.astype(np.int8))


@dataclass(frozen=True)
class Chunk:
    """What one chunk produces: the contract's tables and the month-end delinquency profile."""

    accounts: pd.DataFrame
    bills: pd.DataFrame
    payments: pd.DataFrame
    limits: pd.DataFrame
    truth: pd.DataFrame
    profile: pd.DataFrame  # per month: open accounts, 30+, 90+, short-lag and 30-DPD bill counts
    observed: dict  # the filter's inputs and the hidden draws, for tests and diagnostics


def _days(dates) -> np.ndarray:
    """Dates as int64 days since 1970-01-01."""
    return np.asarray(dates, dtype="datetime64[D]").astype(np.int64)


def _to_date(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[s]")


def simulate_chunk(params: WorldParams, lay: Layout, lo: int, hi: int, *, months: int, seed: int,
                   scenario: str, shock_month: int, with_truth: bool = True) -> Chunk:
    """Simulate the customers whose accounts are lay.account_id[lo:hi] (a chunk must not split a customer)."""
    if months > MAX_MONTHS:
        raise ValueError(f"months must be at most {MAX_MONTHS}, got {months}")
    acc = lay.account_id[lo:hi]
    prod = lay.product[lo:hi]
    cust_of_acc = lay.customer_id[lo:hi]
    custs, cidx = np.unique(cust_of_acc, return_inverse=True)
    C, A, M = len(custs), len(acc), months
    rev = prod == REVOLVING

    starts = month_starts(params, M)
    start_day = _days(starts)
    end_day = _days(starts + pd.offsets.MonthEnd(0))
    stress = stress_path(params, scenario, M, shock_month)
    trans = np.stack([params.transition(x) for x in stress])  # (M, K, S, S)

    # --- customers: static traits and the hidden state path ------------------------------------------------
    cdf = np.cumsum  # every draw below is an inverse-CDF lookup
    band = categorical(uniforms(seed, Stream.BAND, custs), cdf(params.income_band_probs))
    risk = categorical(uniforms(seed, Stream.RISK, custs), cdf(params.risk_given_band, axis=1)[band])
    forgetful = (uniforms(seed, Stream.FORGET, custs) < params.forgetful_share).astype(np.int8)
    state = np.empty((C, M), dtype=np.int8)
    state[:, 0] = categorical(uniforms(seed, Stream.STATE0, custs), cdf(params.initial_state, axis=1)[risk])
    trans_cdf = cdf(trans, axis=-1)
    for m in range(1, M):
        state[:, m] = categorical(uniforms(seed, Stream.STATE, custs, m), trans_cdf[m][risk, state[:, m - 1]])

    # --- accounts: opening, due day, grace, limits and loan terms -----------------------------------------
    u_open = uniforms(seed, Stream.OPEN, acc)
    u_day = uniforms(seed, Stream.OPEN_DAY, acc)
    at_start = u_open < params.open_at_start_share
    later = 1 + np.floor((u_open - params.open_at_start_share) / (1 - params.open_at_start_share) * (M - 1))
    open_month = np.where(rev, np.where(at_start, 0, later), np.floor(u_open * (M - 1))).astype(np.int64)
    lo_day, hi_day = LOAN_DUE_DAYS
    loan_day = lo_day + np.floor(u_day * (hi_day - lo_day + 1)).astype(np.int64)
    rev_open = np.where(at_start, start_day[0] - 1 - np.floor(u_day * 900),
                        start_day[np.minimum(open_month, M - 1)] - 1 - np.floor(u_day * 27)).astype(np.int64)
    open_day = np.where(rev, rev_open, start_day[open_month] + loan_day - 1)
    due_dom = np.where(rev, np.asarray(params.due_days)[np.floor(uniforms(seed, Stream.DUE_DAY, acc)
                                                                 * len(params.due_days)).astype(int)], loan_day)
    grace = categorical(uniforms(seed, Stream.GRACE, acc), cdf(params.grace_day_probs))
    acc_band = band[cidx]
    limit0 = np.round(np.asarray(params.limit_by_band)[acc_band] * (0.5 + uniforms(seed, Stream.LIMIT, acc)), -2)
    term = np.where(rev, 0, np.asarray(params.loan_terms)[np.floor(uniforms(seed, Stream.TERM, acc)
                                                                    * len(params.loan_terms)).astype(int)])
    u_principal = uniforms(seed, Stream.PRINCIPAL, acc)
    principal = np.round(np.asarray(params.limit_by_band)[acc_band] * (0.2 + 0.8 * u_principal), -2)
    installment_amt = np.round(principal * (1 + params.loan_fee_rate * term) / np.maximum(term, 1), 2)
    last_loan_month = open_month + term  # installments fall due in months open+1 .. open+term

    # --- month by month -----------------------------------------------------------------------------------
    out_cdf = cdf(params.outcome_table(), axis=-1)  # (S, F, G, 6)
    late_cdf = cdf(params.late_lag_pmf())
    util_cdf = cdf(params.util_probs, axis=1)
    p_min = np.asarray(params.min_only_probs)
    p_conv = np.asarray(params.convert_probs)
    p_cure = np.asarray(params.cure_probs)
    edges = np.asarray(UTIL_EDGES)
    s_acc = state[cidx]  # (A, M) hidden state by account
    f_acc = forgetful[cidx]

    shape = (A, M)
    has_obl = np.zeros(shape, dtype=bool)
    outcome = np.full(shape, -1, dtype=np.int8)
    lag = np.zeros(shape, dtype=np.int16)
    min_only = np.zeros(shape, dtype=bool)
    parts = np.zeros(shape, dtype=bool)
    part_back = np.zeros(shape, dtype=np.int16)
    util_bucket = np.full(shape, -1, dtype=np.int8)
    amount = np.zeros(shape)
    eligible = np.zeros(shape, dtype=bool)
    converted = np.zeros(shape, dtype=bool)
    conv_term = np.zeros(shape, dtype=np.int16)
    conv_back = np.zeros(shape, dtype=np.int16)
    arrears_start = np.zeros(shape, dtype=bool)
    cured = np.zeros(shape, dtype=bool)
    cure_dom = np.zeros(shape, dtype=np.int16)
    limit_at = np.zeros(shape)  # limit in force at the statement date

    limit = limit0.copy()
    carry = np.zeros(A)
    arrears_since = np.full(A, -1, dtype=np.int64)  # month of the oldest missed, unpaid bill
    arrears_end = np.full(shape, -1, dtype=np.int16)  # arrears_since at each month end
    charged_off = np.full(A, M, dtype=np.int64)  # month at whose end the account was charged off
    due_day_abs = start_day[None, :] + due_dom[:, None] - 1  # (A, M)
    limit_changes: list[tuple[np.ndarray, int, np.ndarray]] = []
    profile_rows = []

    for m in range(M):
        alive = charged_off > m
        obl = alive & np.where(rev, open_month <= m, (open_month < m) & (m <= last_loan_month))
        has_obl[:, m] = obl
        s, f = s_acc[:, m], f_acc
        # cure of arrears carried into this month
        arr = alive & (arrears_since >= 0) & (arrears_since < m)
        arrears_start[:, m] = arr
        cure_now = arr & (uniforms(seed, Stream.CURE, acc, m) < p_cure[s])
        cured[:, m] = cure_now
        # paid on day 15-28, and never before last month's missed bill is 31 days overdue (30 DPD was reached)
        day = 15 + np.floor(uniforms(seed, Stream.CURE_DAY, acc, m) * 14).astype(np.int64)
        if m:
            day = np.maximum(day, due_day_abs[:, m - 1] + 31 - start_day[m] + 1)
        cure_dom[:, m] = day
        arrears_since[cure_now] = -1
        # this month's outcome for everything due
        c = categorical(uniforms(seed, Stream.OUTCOME, acc, m), out_cdf[s, f, grace])
        late_l = LATE_MIN + categorical(uniforms(seed, Stream.LATE_LAG, acc, m), late_cdf)
        early_l = -1 - np.floor(uniforms(seed, Stream.EARLY_LAG, acc, m) * 7)
        lag_m = np.select([c == EARLY, c == LATE, c >= LAG1], [early_l, late_l, c - 1], 0)
        outcome[:, m] = np.where(obl, c, -1)
        lag[:, m] = np.where(obl & (c != MISSED), lag_m, 0)
        parts[:, m] = obl & (uniforms(seed, Stream.PARTS, acc, m) < params.parts_share)
        part_back[:, m] = np.floor(uniforms(seed, Stream.PART_DAY, acc, m) * 5).astype(np.int16)
        # revolving: spend, statement amount, conversion, minimum-only
        r = obl & rev
        b = categorical(uniforms(seed, Stream.UTIL, acc, m), util_cdf[s])
        share = edges[b] + (edges[b + 1] - edges[b]) * uniforms(seed, Stream.UTIL_IN, acc, m)
        util_bucket[:, m] = np.where(r, b, -1)
        limit_at[:, m] = np.where(rev, limit, principal)
        amt = np.round(carry + limit * share, 2)
        amount[:, m] = np.where(r, amt, np.where(obl, installment_amt, 0.0))
        elig = r & (amt >= params.convert_min_amount) & (arrears_since < 0)
        eligible[:, m] = elig
        conv = elig & (uniforms(seed, Stream.CONVERT, acc, m) < p_conv[s])
        converted[:, m] = conv
        conv_term[:, m] = np.asarray(params.convert_terms)[
            np.floor(uniforms(seed, Stream.CONVERT_TERM, acc, m) * len(params.convert_terms)).astype(int)]
        conv_back[:, m] = 1 + np.floor(uniforms(seed, Stream.CONVERT_DAY, acc, m) * (due_dom - 2)).astype(np.int16)
        mo = r & ~conv & (c != MISSED) & (uniforms(seed, Stream.MIN_ONLY, acc, m) < p_min[s])
        min_only[:, m] = mo
        carry = np.where(r, np.where(mo, (amt - np.round(params.min_due_share * amt, 2)) * (1 + params.revolving_rate),
                                     0.0), carry)
        # arrears and charge-off
        new_miss = obl & (c == MISSED) & (arrears_since < 0)
        arrears_since[new_miss] = m
        in_arr = arrears_since >= 0
        oldest_dpd = np.where(in_arr, end_day[m] - due_day_abs[np.arange(A), np.maximum(arrears_since, 0)], -1)
        charge = alive & in_arr & (oldest_dpd >= params.charge_off_dpd)
        charged_off[charge] = m
        arrears_end[:, m] = arrears_since
        # month-end profile: accounts on the book (a charged-off account or a repaid loan has left it)
        open_now = alive & ~charge & (open_day <= end_day[m]) & (rev | (m <= last_loan_month) | in_arr)
        profile_rows.append((m, int(open_now.sum()), int((open_now & (oldest_dpd >= 30)).sum()),
                             int((open_now & (oldest_dpd >= 90)).sum())))
        # baseline limit review at quarter ends: sees only what happened up to this month end
        if (m + 1) % params.limit_review_every == 0 and m + 1 < M:
            lo_m = max(0, m - 5)
            late_recent = ((outcome[:, lo_m:m] >= LAG1) & has_obl[:, lo_m:m]).any(axis=1)
            w = slice(max(0, m - 2), m + 1)
            busy = np.where(util_bucket[:, w] >= 0, amount[:, w] / limit_at[:, w], 0.0).mean(axis=1) > 0.5
            seasoned = open_month <= m - 5
            up = rev & alive & ~charge & ~in_arr & ~late_recent & busy & seasoned
            down = rev & alive & ~charge & in_arr
            new_limit = np.where(up, np.minimum(np.round(limit * (1 + params.limit_increase), -2), params.limit_cap),
                                 np.where(down, np.maximum(np.round(limit * params.limit_decrease, -2),
                                                           params.limit_floor), limit))
            changed = new_limit != limit
            limit_changes.append((np.flatnonzero(changed), m + 1, new_limit[changed]))
            limit = new_limit

    observed = dict(
        has_obl=has_obl, outcome=outcome, lag=lag, min_only=min_only, util_bucket=util_bucket,
        eligible=eligible, converted=converted, arrears_start=arrears_start, cured=cured, grace=grace,
        arrears_end=arrears_end,
        due_day_abs=due_day_abs, end_day=end_day, rev=rev, cidx=cidx, n_customers=C, band=band,
        open_month=open_month, open_day=open_day, last_loan_month=last_loan_month, charged_off=charged_off,
        stress=stress, scenario=scenario, shock_month=shock_month,
        risk=risk, forgetful=forgetful, state=state,  # hidden: for tests and the 'true' probabilities only
    )
    accounts = pd.DataFrame({
        "account_id": acc,
        "customer_id": cust_of_acc,
        "product": PRODUCTS[prod],
        "open_date": _to_date(open_day),
        "grace_days": grace.astype(np.int64),
        "income_band": (band[cidx] + 1).astype(np.int64),
        "loan_term": pd.Series(term, dtype="Int64").where(~rev),
        "charge_off_date": pd.Series(_to_date(end_day[np.minimum(charged_off, M - 1)])).where(charged_off < M),
    })
    bills, payments = _bills_and_payments(params, acc, observed, amount, parts, part_back, conv_term, conv_back,
                                          cure_dom, min_only, due_dom, start_day)
    limits = _limits(acc, rev, open_day, limit0, principal, limit_changes, start_day)
    prof = pd.DataFrame(profile_rows, columns=["month", "open_accounts", "dpd30_accounts", "dpd90_accounts"])
    prof["short_lag_bills"] = ((outcome == LAG1) | (outcome == LAG1 + 1)).sum(axis=0)
    prof["dpd30_bills"] = (outcome == MISSED).sum(axis=0)
    tr = truth_mod.truth_table(params, acc, observed) if with_truth else None
    return Chunk(accounts, bills, payments, limits, tr, prof, observed)


def _bills_and_payments(params, acc, obs, amount, parts, part_back, conv_term, conv_back, cure_dom, min_only,
                        due_dom, start_day):
    """Turn the account-month draws into bill rows and payment rows, sorted as the contract asks."""
    A, M = obs["has_obl"].shape
    rev = obs["rev"]
    end_day = obs["end_day"]
    last_day = end_day[-1]
    outcome, lag = obs["outcome"], obs["lag"]
    due_abs = obs["due_day_abs"]
    a_idx, m_idx = np.nonzero(obs["has_obl"])  # account-months with something due, account-major

    # settlement day of the account-month's obligations (same for all of its bills), or -1 if unpaid by the end
    c = outcome[a_idx, m_idx]
    due = due_abs[a_idx, m_idx]
    settle = np.where(c != MISSED, due + lag[a_idx, m_idx], -1)
    # a missed obligation is settled on the day its arrears are cured
    cure_month = _next_cure_month(obs["cured"], a_idx, m_idx)
    cure_abs = np.where(cure_month < M, start_day[np.minimum(cure_month, M - 1)]
                        + cure_dom[a_idx, np.minimum(cure_month, M - 1)] - 1, -1)
    settle = np.where(c == MISSED, cure_abs, settle)
    settle = np.where(settle > last_day, -1, settle)

    is_rev = rev[a_idx]
    conv = obs["converted"][a_idx, m_idx]
    acct = acc[a_idx]
    # (1) revolving statements and cash-loan installments: one bill per account-month
    stmt_date = np.where(is_rev, start_day[m_idx], due - 10)
    amt = amount[a_idx, m_idx]
    mind = np.where(is_rev, np.round(params.min_due_share * amt, 2), amt)
    bill_id = (acct << 20) | (m_idx.astype(np.int64) << 8)
    conv_date = np.where(conv, due - conv_back[a_idx, m_idx], -1)
    # (2) installments of converted statements: due in the conversion month and the following months
    ci = np.flatnonzero(conv)
    n = conv_term[a_idx[ci], m_idx[ci]].astype(np.int64)
    rep = np.repeat(ci, n)
    step = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    im = m_idx[rep] + step
    keep = im < M
    rep, im = rep[keep], im[keep]
    ia = a_idx[rep]
    inst_amt = np.round(amt[rep] * (1 + params.loan_fee_rate * n[np.searchsorted(ci, rep)]) /
                        n[np.searchsorted(ci, rep)], 2)
    # each installment shares the outcome of its own due month; find that account-month's row
    row_of = np.full((A, M), -1, dtype=np.int64)
    row_of[a_idx, m_idx] = np.arange(len(a_idx))
    irow = row_of[ia, im]
    keep = irow >= 0  # due while the account still had obligations
    rep, im, ia, inst_amt, irow = rep[keep], im[keep], ia[keep], inst_amt[keep], irow[keep]

    b_acct = np.concatenate([acct, acc[ia]])
    b_row = np.concatenate([np.arange(len(a_idx)), irow])  # account-month whose outcome pays this bill
    b_id = np.concatenate([bill_id, (acc[ia] << 20) | (im.astype(np.int64) << 8) | (1 + m_idx[rep] % 255)])
    b_stmt = np.concatenate([stmt_date, start_day[im]])
    b_due = np.concatenate([due, due_abs[ia, im]])
    b_amt = np.concatenate([amt, inst_amt])
    b_min = np.concatenate([mind, inst_amt])
    b_parent = np.concatenate([np.full(len(a_idx), -1), bill_id[rep]])
    b_conv = np.concatenate([conv_date, np.full(len(ia), -1)])
    b_is_stmt = np.concatenate([is_rev, np.zeros(len(ia), dtype=bool)])
    base = min(b_due.min(initial=1 << 40), b_stmt.min(initial=1 << 40))  # sort keys need day offsets < 2**16
    # one int64 sort key: account, due date, statement date, then the bill's slot within the account-month
    order = np.argsort((b_acct << 32) | ((b_due - base) << 16) | ((63 - (b_due - b_stmt)) << 8) | (b_id & 0xFF),
                       kind="stable")
    (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt) = (
        x[order] for x in (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt))
    bills = pd.DataFrame({
        "account_id": b_acct,
        "bill_id": b_id,
        "statement_date": _to_date(b_stmt),
        "due_date": _to_date(b_due),
        "amount_due": b_amt,
        "min_due": b_min,
        "parent_bill_id": pd.Series(b_parent, dtype="Int64").where(b_parent >= 0),
        "converted_date": pd.Series(_to_date(np.maximum(b_conv, 0))).where(b_conv >= 0),
    })

    # payments: every bill settled by the end and not converted gets its final payment; some come in two parts
    b_settle = settle[b_row]
    pay = (b_settle >= 0) & (b_conv < 0)
    b_mo = np.where(b_is_stmt, min_only[a_idx[b_row], m_idx[b_row]], False)
    total = np.where(b_mo, b_min, b_amt)
    b_lag = b_settle - b_due
    grace = obs["grace"][a_idx[b_row]]
    penalty = np.where(b_lag > grace, np.round(total * params.penalty_rate * b_lag, 2), 0.0)
    two = pay & parts[a_idx[b_row], m_idx[b_row]] & (c[b_row] != MISSED) & (b_min > 0.02)
    first_amt = np.round(0.5 * b_min, 2)
    first_day = np.maximum(b_settle - 1 - part_back[a_idx[b_row], m_idx[b_row]], b_stmt)
    p_acct = np.concatenate([b_acct[two], b_acct[pay]])
    p_bill = np.concatenate([b_id[two], b_id[pay]])
    p_day = np.concatenate([first_day[two], b_settle[pay]])
    p_amt = np.concatenate([first_amt[two], np.round(total - np.where(two, first_amt, 0) + penalty, 2)[pay]])
    order = np.argsort((p_acct << 32) | ((p_day - base) << 16) | (p_bill & 0xFFFF), kind="stable")
    payments = pd.DataFrame({
        "account_id": p_acct[order],
        "bill_id": p_bill[order],
        "payment_date": _to_date(p_day[order]),
        "amount": p_amt[order],
    })
    return bills, payments


def _next_cure_month(cured: np.ndarray, a_idx: np.ndarray, m_idx: np.ndarray) -> np.ndarray:
    """For each account-month, the first later month in which the account cured its arrears (M if none)."""
    A, M = cured.shape
    nxt = np.full((A, M + 1), M, dtype=np.int64)
    for m in range(M - 1, -1, -1):  # a backward scan over months, vectorised over accounts
        nxt[:, m] = np.where(cured[:, m], m, nxt[:, m + 1])
    return nxt[a_idx, np.minimum(m_idx + 1, M)]


def _limits(acc, rev, open_day, limit0, principal, changes, start_day) -> pd.DataFrame:
    """Limit history: the opening limit (a cash loan's is its principal), then each policy change."""
    ids = [acc]
    dates = [open_day]
    values = [np.where(rev, limit0, principal)]
    for idx, m, new in changes:
        keep = open_day[idx] < start_day[m]
        ids.append(acc[idx[keep]])
        dates.append(np.full(keep.sum(), start_day[m]))
        values.append(new[keep])
    a, d, v = np.concatenate(ids), np.concatenate(dates), np.concatenate(values)
    order = np.lexsort((d, a))
    return pd.DataFrame({"account_id": a[order], "effective_date": _to_date(d[order]), "credit_limit": v[order]})
