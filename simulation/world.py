"""A synthetic Huabei/Jiebei credit world: a living book of customers, their hidden risk, and what a lender
gets to see.

One chunk of customers at a time (simulation.book), month by month, vectorised over *lanes*: a customer's
revolving line is one lane, and their cash-loan lane holds the successive loans they take (each loan an
account of its own):
  1. draw each customer's hidden type (risk, forgetfulness) and state path (a Markov chain moved by the
     published macro stress index) from the month they arrive;
  2. open loans as scheduled (not while the customer is in arrears); for every lane with something due this
     month, draw the repayment outcome from the hidden state (early, on time, 1 or 2 days late, 3-27 days
     late, missed), how much is paid (full or minimum), how much was drawn, whether the statement is converted
     into installments, whether arrears cure, and whether a line in good standing is closed by its holder;
     a line with a bill 30+ days past due at its statement date draws nothing and gets no statement; charge
     off at 180+ days past due;
  3. at each month end hand the month to a decision hook (`Decisions`, none yet), then review revolving
     limits under a baseline policy that sees only observed behaviour;
  4. turn the draws into the contract's tables (accounts, bills, payments, limits) and run the exact filter
     (`simulation.truth`) for the `truth` table of the as-of months.
The first `history` months are the warehouse's history before the first as-of month. Draws are keyed by
(seed, stream, customer or lane, month) -- see `simulation.rng` -- so a chunk's output does not depend on
which other chunks exist or in which process they run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from simulation import truth as truth_mod
from simulation.book import Book
from simulation.macro import first_world_month, month_starts, stress_path
from simulation.params import LAG1, LATE, LATE_MIN, MISSED, UTIL_EDGES, WorldParams
from simulation.rng import categorical, geometric, uniforms

PRODUCTS = np.array(["revolving", "installment"])
MAX_MONTHS = 240  # bill ids keep 12 bits for the month
SLOTS = 16  # account id = customer id * SLOTS + slot: 0 the revolving line, 1.. the cash loans in order
LOAN_DUE_DAYS = (2, 20)  # cash-loan installments fall due on this day range (keeps 30 DPD inside a month)


class Stream:
    """Named random streams: one per kind of draw, so adding a draw never shifts another."""

    HOLDINGS, BAND, RISK, FORGET, STATE0, STATE, TENURE, SECOND = 1, 2, 3, 4, 5, 6, 7, 8
    OPEN_DAY, DUE_DAY, GRACE, LIMIT, TERM, PRINCIPAL, GAP, AGAIN = 11, 12, 13, 14, 15, 16, 17, 18
    OUTCOME, LATE_LAG, EARLY_LAG, MIN_ONLY, PARTS, PART_DAY = 20, 21, 22, 23, 24, 25
    UTIL, UTIL_IN, CONVERT, CONVERT_TERM, CONVERT_DAY, CURE, CURE_DAY, CLOSE = 26, 27, 28, 29, 30, 31, 32, 33


@dataclass(frozen=True)
class MonthEnd:
    """What a decision hook sees at a month end: observed state only, per lane of the chunk."""

    month: int  # world month
    customer_id: np.ndarray
    revolving: np.ndarray
    limit: np.ndarray  # in force, revolving lines
    in_arrears: np.ndarray


# A decision hook: given the month end, new limits for the lines (NaN: unchanged), or None for no decision.
# The seam where a replay of the world under a policy plugs in; the world itself decides nothing yet.
Decisions = Callable[[MonthEnd], "np.ndarray | None"]


def no_decisions(month_end: MonthEnd) -> None:
    return None


@dataclass(frozen=True)
class Chunk:
    """What one chunk produces: the contract's tables (Arrow, typed as they are written) and the month-end
    profile."""

    accounts: pa.Table
    bills: pa.Table
    payments: pa.Table
    limits: pa.Table
    truth: pa.Table | None
    profile: pd.DataFrame  # per world month: open accounts by product, 30+, 90+, short-lag and 30-DPD bills
    observed: dict  # the filter's inputs and the hidden draws, for tests and diagnostics


def _days(dates) -> np.ndarray:
    """Dates as int64 days since 1970-01-01."""
    return np.asarray(dates, dtype="datetime64[D]").astype(np.int64)


def _date(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Day numbers as an Arrow date32 column, null where not `valid`."""
    return pa.array(np.asarray(days).astype(np.int32), type=pa.date32(), mask=None if valid is None else ~valid)


def _nullable(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), mask=~valid)


@dataclass(frozen=True)
class Lanes:
    """The chunk's lanes, customer by customer, the line before the loan lane."""

    cidx: np.ndarray  # customer index within the chunk
    rev: np.ndarray
    unit: np.ndarray  # draw key
    first: np.ndarray  # world month of the line's first statement, or of the first scheduled loan


def _customers(params: WorldParams, bk: Book, lo: int, hi: int, seed: int, trans: np.ndarray, W: int):
    """Static traits and the hidden state path of customers lo..hi-1, from the month each arrives."""
    unit, cohort = bk.unit[lo:hi], bk.cohort[lo:hi]
    start = cohort == 0
    cdf = np.cumsum
    band = np.where(start, categorical(uniforms(seed, Stream.BAND, unit), cdf(params.book_band_probs)),
                    categorical(uniforms(seed, Stream.BAND, unit), cdf(params.income_band_probs)))
    risk_cdf = np.where(start[:, None], cdf(params.book_risk_given_band, axis=1)[band],
                        cdf(params.risk_given_band, axis=1)[band])
    risk = categorical(uniforms(seed, Stream.RISK, unit), risk_cdf)
    forgetful = (uniforms(seed, Stream.FORGET, unit) < params.forgetful_share).astype(np.int8)
    s0 = categorical(uniforms(seed, Stream.STATE0, unit), cdf(params.initial_state, axis=1)[risk])
    state = np.empty((len(unit), W), dtype=np.int8)
    state[:, 0] = s0
    trans_cdf = cdf(trans, axis=-1)
    for m in range(1, W):
        moved = categorical(uniforms(seed, Stream.STATE, unit, m), trans_cdf[m][risk, state[:, m - 1]])
        state[:, m] = np.where(cohort < m, moved, s0)
    holdings = categorical(uniforms(seed, Stream.HOLDINGS, unit), cdf(params.holdings_probs))
    return band, risk, forgetful, state, holdings, cohort


def _lanes(params: WorldParams, cohort: np.ndarray, holdings: np.ndarray, unit: np.ndarray, seed: int) -> Lanes:
    """A line for customers holding one (holdings 0, 1), a loan lane for those taking loans (0, 2). A new
    customer's line's first statement comes the month after they arrive; a two-product customer takes a
    first loan some months later; the starting book's loans begin at a random phase."""
    has = np.stack([holdings <= 1, holdings != 1], axis=1)  # (customers, 2): line, loan lane
    cidx, kind = np.nonzero(has)
    rev = kind == 0
    lane_unit = (unit[cidx].astype(np.uint64) << np.uint64(1)) | kind.astype(np.uint64)
    arrive = cohort[cidx]
    delay = geometric(uniforms(seed, Stream.SECOND, lane_unit), params.second_product_delay)
    gap = geometric(uniforms(seed, Stream.GAP, lane_unit, 4095), params.loan_gap_mean)
    first = np.where(rev, np.where(arrive == 0, 0, arrive + 1),
                     np.where(arrive == 0, gap, np.where(holdings[cidx] == 0, arrive + 1 + delay, arrive)))
    return Lanes(cidx.astype(np.int64), rev, lane_unit, first.astype(np.int64))


def _loan_schedule(params: WorldParams, lanes: Lanes, seed: int, W: int):
    """Per loan lane and loan j: the world month it is taken (W: never), its term and principal base share."""
    n, J = len(lanes.unit), params.max_loans
    opens = np.full((n, J), W, dtype=np.int64)
    terms = np.zeros((n, J), dtype=np.int64)
    share = np.zeros((n, J))
    at = np.where(lanes.rev, W, lanes.first)
    going = ~lanes.rev & (at < W)
    for j in range(J):
        opens[:, j] = np.where(going, at, W)
        terms[:, j] = np.asarray(params.loan_terms)[np.floor(uniforms(seed, Stream.TERM, lanes.unit, j)
                                                             * len(params.loan_terms)).astype(int)]
        share[:, j] = 0.2 + 0.8 * uniforms(seed, Stream.PRINCIPAL, lanes.unit, j)
        gap = geometric(uniforms(seed, Stream.GAP, lanes.unit, j), params.loan_gap_mean)
        at = at + terms[:, j] + 1 + gap
        going = going & (uniforms(seed, Stream.AGAIN, lanes.unit, j) < params.loan_again) & (at < W)
    return opens, terms, share


def simulate_chunk(params: WorldParams, bk: Book, lo: int, hi: int, *, history: int, months: int, seed: int,
                   scenario: str, shock_month: int, with_truth: bool = True,
                   decisions: Decisions = no_decisions) -> Chunk:
    """Simulate customers lo..hi-1 of the book over `history` + `months` world months; `shock_month` counts
    from the first as-of month."""
    last = history + months - 1  # the tables' last month: the extraction date is its last day
    if last >= MAX_MONTHS:
        raise ValueError(f"history + months must be at most {MAX_MONTHS}, got {last + 1}")
    W = last + 2  # a month more is simulated: bills stated by the extraction date fall due after it
    first = first_world_month(params, history)
    starts = month_starts(first, W)
    start_day = _days(starts)
    end_day = _days(starts + pd.offsets.MonthEnd(0))
    stress = stress_path(params, scenario, W, history + shock_month, first)
    trans = np.stack([params.transition(x) for x in stress])  # (W, K, S, S)
    band, risk, forgetful, state, holdings, cohort = _customers(params, bk, lo, hi, seed, trans, W)
    customer_id = bk.customer_id[lo:hi]
    lanes = _lanes(params, cohort, holdings, bk.unit[lo:hi], seed)
    cidx, rev, lunit = lanes.cidx, lanes.rev, lanes.unit
    L, C = len(cidx), hi - lo
    cdf = np.cumsum

    # --- lanes' static terms: due day, grace, opening, limits, loan schedule ------------------------------
    u_day = uniforms(seed, Stream.OPEN_DAY, lunit)
    lo_day, hi_day = LOAN_DUE_DAYS
    loan_day = lo_day + np.floor(u_day * (hi_day - lo_day + 1)).astype(np.int64)
    due_dom = np.where(rev, np.asarray(params.due_days)[np.floor(uniforms(seed, Stream.DUE_DAY, lunit)
                                                                 * len(params.due_days)).astype(int)], loan_day)
    grace = categorical(uniforms(seed, Stream.GRACE, lunit), cdf(params.grace_day_probs))
    arrive = cohort[cidx]
    tenure = np.minimum(geometric(uniforms(seed, Stream.TENURE, lunit), 1.0 / params.arrival_rate),
                        params.tenure_cap_months)
    arrive_day = start_day[np.minimum(arrive, W - 1)] + np.floor(u_day * 27).astype(np.int64)
    rev_open = np.where(arrive == 0, start_day[0] - 1 - np.floor(tenure * 30.44 + u_day * 27).astype(np.int64),
                        arrive_day)
    new_line = rev & (arrive > 0)
    band_limit = np.asarray(params.limit_by_band)[band[cidx]]
    limit0 = np.maximum(np.round(band_limit * (0.5 + uniforms(seed, Stream.LIMIT, lunit))
                                 * np.where(new_line, params.new_limit_share, 1.0), -2), params.limit_floor)
    opens, terms, pshare = _loan_schedule(params, lanes, seed, W)

    # --- month by month -----------------------------------------------------------------------------------
    out_cdf = cdf(params.outcome_table(), axis=-1)  # (S, F, G, 6)
    late_cdf = cdf(params.late_lag_pmf())
    util_cdf = cdf(params.util_probs, axis=1)
    p_min, p_conv, p_cure = (np.asarray(x) for x in (params.min_only_probs, params.convert_probs, params.cure_probs))
    edges = np.asarray(UTIL_EDGES)
    s_lane = state[cidx]
    f_lane = forgetful[cidx]

    shape = (L, W)
    has_obl = np.zeros(shape, dtype=bool)
    stmt = np.zeros(shape, dtype=bool)
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
    closable = np.zeros(shape, dtype=bool)
    closing = np.zeros(shape, dtype=bool)
    loan_at = np.full(shape, -1, dtype=np.int8)  # the loan (index in its lane) whose installments fall due
    limit_at = np.zeros(shape)

    limit = limit0.copy()
    carry = np.zeros(L)
    inst_until = np.full(L, -1, dtype=np.int64)  # last month a converted statement's installments fall due
    arrears_since = np.full(L, -1, dtype=np.int64)
    arrears_end = np.full(shape, -1, dtype=np.int16)
    charged_off = np.full(L, W, dtype=np.int64)
    closed_at = np.full(L, W, dtype=np.int64)  # month at whose end a line was closed
    cur = np.full(L, -1, dtype=np.int64)  # the loan running on a loan lane
    nxt = np.zeros(L, dtype=np.int64)
    taken = np.zeros((L, params.max_loans), dtype=bool)
    cur_open = np.full(L, -1, dtype=np.int64)
    cur_last = np.full(L, -1, dtype=np.int64)
    cur_amt = np.zeros(L)
    due_day_abs = start_day[None, :] + due_dom[:, None] - 1
    limit_changes: list[tuple[np.ndarray, int, np.ndarray]] = []
    profile_rows = []

    loan_rows = np.flatnonzero(~rev)
    for m in range(W):
        alive = charged_off > m
        # loans taken this month (installments from the next), never while the customer is in arrears
        j = np.minimum(nxt[loan_rows], params.max_loans - 1)
        due_now = (nxt[loan_rows] < params.max_loans) & (opens[loan_rows, j] == m)
        nxt[loan_rows] += due_now
        blocked_cust = np.bincount(cidx, weights=(arrears_since >= 0) | ~alive, minlength=C) > 0
        take_at = due_now & alive[loan_rows] & ~blocked_cust[cidx[loan_rows]]
        tk, j = loan_rows[take_at], j[take_at]
        taken[tk, j] = True
        cur[tk], cur_open[tk], cur_last[tk] = j, m, m + terms[tk, j]
        principal = np.round(band_limit[tk] * pshare[tk, j], -2)
        cur_amt[tk] = np.round(principal * (1 + params.loan_fee_rate * terms[tk, j]) / terms[tk, j], 2)
        # the lanes where anything can happen this month: lines open, loans running or in arrears
        live = alive & np.where(rev, (rev_open <= end_day[m]) & (closed_at >= m),
                                (cur >= 0) & ((m <= cur_last) | (arrears_since >= 0)))
        ix = np.flatnonzero(live)
        u, r, s, f, g = lunit[ix], rev[ix], s_lane[ix, m], f_lane[ix], grace[ix]
        since, lim = arrears_since[ix], limit[ix]
        # what falls due: a line's statement unless closed or 30+ days past due; its installment plans; a loan
        line_open = r & (lanes.first[ix] <= m)
        st = line_open & ~((since >= 0) & (since <= m - 2))
        loan_due = ~r & (cur_open[ix] < m) & (m <= cur_last[ix])
        obl = st | (line_open & (inst_until[ix] >= m)) | loan_due
        has_obl[ix, m], stmt[ix, m] = obl, st
        loan_at[ix, m] = np.where(r, -1, cur[ix])
        # cure of arrears carried into this month
        arr = (since >= 0) & (since < m)
        arrears_start[ix, m] = arr
        cure_now = arr & (uniforms(seed, Stream.CURE, u, m) < p_cure[s])
        cured[ix, m] = cure_now
        day = 15 + np.floor(uniforms(seed, Stream.CURE_DAY, u, m) * 14).astype(np.int64)
        if m:  # never before last month's missed bill is 31 days overdue (30 DPD was reached)
            day = np.maximum(day, due_day_abs[ix, m - 1] + 31 - start_day[m] + 1)
        cure_dom[ix, m] = day
        since = np.where(cure_now, -1, since)
        # this month's outcome for everything due
        c = categorical(uniforms(seed, Stream.OUTCOME, u, m), out_cdf[s, f, g])
        late_l = LATE_MIN + categorical(uniforms(seed, Stream.LATE_LAG, u, m), late_cdf)
        early_l = -1 - np.floor(uniforms(seed, Stream.EARLY_LAG, u, m) * 7)
        lag_m = np.select([c == 0, c == LATE, c >= LAG1], [early_l, late_l, c - 1], 0)
        outcome[ix, m] = np.where(obl, c, -1)
        lag[ix, m] = np.where(obl & (c != MISSED), lag_m, 0)
        parts[ix, m] = obl & (uniforms(seed, Stream.PARTS, u, m) < params.parts_share)
        part_back[ix, m] = np.floor(uniforms(seed, Stream.PART_DAY, u, m) * 5).astype(np.int16)
        # a line in good standing may be closed by its holder at the month end: that month it pays in full
        can_close = st & (since < 0)
        closable[ix, m] = can_close
        close = can_close & (c != MISSED) & (uniforms(seed, Stream.CLOSE, u, m) < params.closure_rate)
        closing[ix, m] = close
        closed_at[ix[close]] = m
        # statements: drawing on the credit left (a new line's ramps up), amount, conversion, minimum-only
        b = categorical(uniforms(seed, Stream.UTIL, u, m), util_cdf[s])
        share = edges[b] + (edges[b + 1] - edges[b]) * uniforms(seed, Stream.UTIL_IN, u, m)
        ramp = np.where(new_line[ix], np.minimum(1.0, (m - lanes.first[ix] + 1) / params.ramp_months), 1.0)
        room = np.maximum(lim - carry[ix], 0.0)
        util_bucket[ix, m] = np.where(st & (room > 0), b, -1)  # with no credit left, nothing is drawn
        limit_at[ix, m] = np.where(r, lim, cur_amt[ix])
        amt = np.round(carry[ix] + room * share * ramp, 2)
        amount[ix, m] = np.where(st, amt, np.where(loan_due, cur_amt[ix], 0.0))
        elig = st & (amt >= params.convert_min_amount) & (since < 0) & ~close
        eligible[ix, m] = elig
        conv = elig & (uniforms(seed, Stream.CONVERT, u, m) < p_conv[s])
        converted[ix, m] = conv
        n_conv = np.asarray(params.convert_terms)[
            np.floor(uniforms(seed, Stream.CONVERT_TERM, u, m) * len(params.convert_terms)).astype(int)]
        conv_term[ix, m] = n_conv
        inst_until[ix] = np.where(conv, np.maximum(inst_until[ix], m + n_conv - 1), inst_until[ix])
        conv_back[ix, m] = 1 + np.floor(uniforms(seed, Stream.CONVERT_DAY, u, m) * (due_dom[ix] - 2)).astype(np.int16)
        mo = st & ~conv & ~close & (c != MISSED) & (uniforms(seed, Stream.MIN_ONLY, u, m) < p_min[s])
        min_only[ix, m] = mo
        carry[ix] = np.where(st, np.where(mo, (amt - np.round(params.min_due_share * amt, 2))
                                          * (1 + params.revolving_rate), 0.0), carry[ix])
        # arrears and charge-off
        since = np.where(obl & (c == MISSED) & (since < 0), m, since)
        arrears_since[ix] = since
        in_arr = since >= 0
        oldest_dpd = np.where(in_arr, end_day[m] - due_day_abs[ix, np.maximum(since, 0)], -1)
        charge = in_arr & (oldest_dpd >= params.charge_off_dpd)
        charged_off[ix[charge]] = m
        arrears_end[ix, m] = since
        # month-end profile: accounts on the book
        line_on = r & ~charge & (closed_at[ix] > m)
        loan_on = ~r & ~charge & ((m < cur_last[ix]) | in_arr)
        on = line_on | loan_on
        profile_rows.append((m, int(on.sum()), int(line_on.sum()), int(loan_on.sum()),
                             int((on & (oldest_dpd >= 30)).sum()), int((on & (oldest_dpd >= 90)).sum())))
        # the decision hook, then the baseline limit review at quarter ends (sees only what happened so far)
        decided = decisions(MonthEnd(m, customer_id[cidx], rev, limit.copy(), arrears_since >= 0))
        new_limit = limit.copy()
        if (m + 1) % params.limit_review_every == 0 and m + 1 <= last:
            lines, arrears = ix[line_on], in_arr[line_on]
            lo_m = max(0, m - 5)
            late_recent = ((outcome[lines, lo_m:m] >= LAG1) & has_obl[lines, lo_m:m]).any(axis=1)
            w = slice(max(0, m - 2), m + 1)
            drawn = np.divide(amount[lines, w], limit_at[lines, w], out=np.zeros((len(lines), w.stop - w.start)),
                              where=stmt[lines, w])
            busy = drawn.mean(axis=1) > 0.5
            seasoned = lanes.first[lines] <= m - 5
            up = ~arrears & ~late_recent & busy & seasoned
            now = limit[lines]
            new_limit[lines] = np.where(up, np.minimum(np.round(now * (1 + params.limit_increase), -2),
                                                       params.limit_cap),
                                        np.where(arrears, np.maximum(np.round(now * params.limit_decrease, -2),
                                                                     params.limit_floor), now))
        if decided is not None:
            new_limit = np.where(rev & np.isfinite(decided), decided, new_limit)
        changed = (new_limit != limit) & (m + 1 <= last)
        if changed.any():
            limit_changes.append((np.flatnonzero(changed), m + 1, new_limit[changed]))
        limit = new_limit

    # accounts: a line per lane, a loan per loan taken by the extraction date
    loan_lane, loan_j = np.nonzero(taken & (opens <= last))
    loan_open_month = opens[loan_lane, loan_j]
    observed = dict(
        has_obl=has_obl, stmt=stmt, outcome=outcome, lag=lag, min_only=min_only, util_bucket=util_bucket,
        eligible=eligible, converted=converted, arrears_start=arrears_start, cured=cured, grace=grace,
        closable=closable, closing=closing, closed_at=closed_at, arrears_end=arrears_end, loan_at=loan_at,
        due_day_abs=due_day_abs, end_day=end_day, rev=rev, cidx=cidx, lane_unit=lunit, n_customers=C, band=band,
        cohort=cohort, rev_open=rev_open, first=lanes.first, charged_off=charged_off, history=history,
        loan_open=opens, loan_term=terms, stress=stress, scenario=scenario, shock_month=history + shock_month,
        first_month=first, last_month=last,
        risk=risk, forgetful=forgetful, state=state,  # hidden: for tests and the 'true' probabilities only
    )
    acc = _account_ids(customer_id, cidx, rev, loan_at)  # (L, W): the account of each lane-month
    bills, payments, repaid = _bills_and_payments(params, acc, observed, amount, parts, part_back, conv_term,
                                                       conv_back, cure_dom, min_only, start_day, due_dom)
    accounts = _accounts(params, customer_id, observed, rev_open, due_dom, grace, band, loan_lane, loan_j,
                         loan_open_month, terms, start_day, end_day, repaid)
    limits = _limits(customer_id, observed, rev_open, limit0, loan_lane, loan_j, loan_open_month, band_limit,
                     pshare, limit_changes, start_day, due_dom)
    prof = pd.DataFrame(profile_rows, columns=["month", "open_accounts", "open_lines", "open_loans",
                                               "dpd30_accounts", "dpd90_accounts"])
    prof["short_lag_bills"] = ((outcome == LAG1) | (outcome == LAG1 + 1)).sum(axis=0)
    prof["dpd30_bills"] = (outcome == MISSED).sum(axis=0)
    prof = prof[prof["month"] <= last].copy()
    prof["month"] -= history  # as-of months count from 0; the history's are negative
    tr = truth_mod.truth_table(params, acc, observed) if with_truth else None
    return Chunk(accounts, bills, payments, limits, tr, prof, observed)


def _account_ids(customer_id, cidx, rev, loan_at) -> np.ndarray:
    """The account of each lane-month: the line, or the loan running on the loan lane (0 where none)."""
    slot = np.where(rev[:, None], 0, loan_at.astype(np.int64) + 1)
    acc = customer_id[cidx][:, None] * SLOTS + slot
    return np.where(rev[:, None] | (loan_at >= 0), acc, 0)


def _accounts(params, customer_id, obs, rev_open, due_dom, grace, band, loan_lane, loan_j, loan_open_month, terms,
              start_day, end_day, repaid) -> pa.Table:
    """One row per line opened and per loan taken by the last day, in account order."""
    rev, cidx, last = obs["rev"], obs["cidx"], obs["last_month"]
    last_day = end_day[last]
    lines = np.flatnonzero(rev & (rev_open <= last_day))
    co, closed = obs["charged_off"], obs["closed_at"]
    line_ids = customer_id[cidx[lines]] * SLOTS
    loan_ids = customer_id[cidx[loan_lane]] * SLOTS + 1 + loan_j
    # a loan is charged off if its lane was while it ran: the lane's last loan
    last_taken = np.full(len(rev), -1)
    np.maximum.at(last_taken, loan_lane, loan_j)
    loan_co = (co[loan_lane] <= last) & (loan_j == last_taken[loan_lane])
    ids = np.concatenate([line_ids, loan_ids])
    lane = np.concatenate([lines, loan_lane])
    charge_m = np.concatenate([np.where(co[lines] <= last, co[lines], -1), np.where(loan_co, co[loan_lane], -1)])
    loan_close = _lookup(*repaid, loan_ids)
    close = np.concatenate([np.where(closed[lines] <= last, end_day[np.minimum(closed[lines], last)], -1),
                            np.where(loan_co, -1, loan_close)])
    order = np.argsort(ids, kind="stable")
    ids, lane, charge_m, close = ids[order], lane[order], charge_m[order], close[order]
    is_rev = rev[lane]
    open_day = np.concatenate([rev_open[lines], start_day[loan_open_month] + due_dom[loan_lane] - 1])[order]
    term = np.concatenate([np.zeros(len(lines), np.int64), terms[loan_lane, loan_j]])[order]
    return pa.table({
        "account_id": ids,
        "customer_id": customer_id[cidx[lane]],
        "product": pa.DictionaryArray.from_arrays(pa.array((~is_rev).astype(np.int8)), pa.array(PRODUCTS))
        .dictionary_decode(),
        "open_date": _date(open_day),
        "grace_days": grace[lane].astype(np.int64),
        "income_band": (band[cidx[lane]] + 1).astype(np.int64),
        "loan_term": _nullable(term, ~is_rev),
        "charge_off_date": _date(end_day[np.maximum(charge_m, 0)], charge_m >= 0),
        "close_date": _date(np.maximum(close, 0), close >= 0),
    })


def _lookup(ids: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values at each of `wanted` in the sorted `ids`, -1 where it is not there."""
    if not len(ids):
        return np.full(len(wanted), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return np.where(ids[pos] == wanted, values[pos], -1)


def _bills_and_payments(params, acc, obs, amount, parts, part_back, conv_term, conv_back, cure_dom, min_only,
                        start_day, due_dom):
    """Turn the lane-month draws into bill rows and payment rows, sorted as the contract asks; and the loans'
    closing days (loan account ids, the day the last bill of a finished loan was settled or -1)."""
    L, W = obs["has_obl"].shape
    rev = obs["rev"]
    end_day = obs["end_day"]
    last_day = end_day[obs["last_month"]]  # the extraction date
    outcome, lag = obs["outcome"], obs["lag"]
    due_abs = obs["due_day_abs"]
    flat = np.flatnonzero(obs["has_obl"])  # lane-months with something due, lane-major
    a_idx, m_idx = np.divmod(flat, W)

    def at(x: np.ndarray) -> np.ndarray:
        return np.take(x, flat)

    # settlement day of the lane-month's obligations (same for all of its bills), or -1 if unpaid by the end
    c = at(outcome)
    due = at(due_abs)
    settle = due + at(lag)
    miss = np.flatnonzero(c == MISSED)  # settled on the day the arrears are cured
    cure_month = np.minimum(_next_cure_month(obs["cured"], a_idx[miss], m_idx[miss]), W)
    cure_abs = start_day[np.minimum(cure_month, W - 1)] + cure_dom[a_idx[miss], np.minimum(cure_month, W - 1)] - 1
    settle[miss] = np.where(cure_month < W, cure_abs, -1)
    settle = np.where(settle > last_day, -1, settle)

    is_rev = rev[a_idx]
    primary = np.where(is_rev, at(obs["stmt"]), True)  # a statement or a loan installment
    conv = at(obs["converted"])
    acct = at(acc)
    stmt_date = np.where(is_rev, start_day[m_idx], due - 10)
    amt = at(amount)
    mind = np.where(is_rev, np.round(params.min_due_share * amt, 2), amt)
    bill_id = (acct << 20) | (m_idx.astype(np.int64) << 8)
    conv_date = np.where(conv, due - at(conv_back), -1)
    # installments of converted statements: due in the conversion month and the following months, while the
    # line has something due (a closed line's remaining installments were settled when it closed)
    ci = np.flatnonzero(conv)
    n = conv_term[a_idx[ci], m_idx[ci]].astype(np.int64)
    rep = np.repeat(ci, n)
    step = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    im = m_idx[rep] + step
    keep = im < W
    rep, im = rep[keep], im[keep]
    ia = a_idx[rep]
    nn = n[np.searchsorted(ci, rep)]
    inst_amt = np.round(amt[rep] * (1 + params.loan_fee_rate * nn) / nn, 2)
    row_of = np.full((L, W), -1, dtype=np.int64)
    row_of[a_idx, m_idx] = np.arange(len(a_idx))
    irow = row_of[ia, im]
    keep = irow >= 0
    rep, im, ia, inst_amt, irow = rep[keep], im[keep], ia[keep], inst_amt[keep], irow[keep]

    p = np.flatnonzero(primary)
    b_acct = np.concatenate([acct[p], acct[rep]])
    b_row = np.concatenate([p, irow])  # lane-month whose outcome pays this bill
    b_id = np.concatenate([bill_id[p], (acct[rep] << 20) | (im.astype(np.int64) << 8) | (1 + m_idx[rep] % 255)])
    b_stmt = np.concatenate([stmt_date[p], start_day[im]])
    b_due = np.concatenate([due[p], due_abs[ia, im]])
    b_amt = np.concatenate([amt[p], inst_amt])
    b_min = np.concatenate([mind[p], inst_amt])
    b_parent = np.concatenate([np.full(len(p), -1), bill_id[rep]])
    b_conv = np.concatenate([conv_date[p], np.full(len(ia), -1)])
    b_is_stmt = np.concatenate([is_rev[p], np.zeros(len(ia), dtype=bool)])
    known = b_stmt <= last_day  # stated by the extraction date (an installment may fall due after it)
    (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt) = (
        x[known] for x in (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt))
    base = min(b_due.min(initial=1 << 40), b_stmt.min(initial=1 << 40))  # sort keys need day offsets < 2**16
    # one int64 sort key: account, due date, statement date, then the bill's slot within the lane-month
    order = np.argsort((b_acct << 32) | ((b_due - base) << 16) | ((63 - (b_due - b_stmt)) << 8) | (b_id & 0xFF),
                       kind="stable")
    (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt) = (
        x[order] for x in (b_acct, b_row, b_id, b_stmt, b_due, b_amt, b_min, b_parent, b_conv, b_is_stmt))
    bills = pa.table({
        "account_id": b_acct,
        "bill_id": b_id,
        "statement_date": _date(b_stmt),
        "due_date": _date(b_due),
        "amount_due": b_amt,
        "min_due": b_min,
        "parent_bill_id": _nullable(b_parent, b_parent >= 0),
        "converted_date": _date(np.maximum(b_conv, 0), b_conv >= 0),
    })

    b_settle = settle[b_row]
    pay = (b_settle >= 0) & (b_conv < 0)
    b_flat = flat[b_row]
    b_mo = b_is_stmt & np.take(min_only, b_flat)
    total = np.where(b_mo, b_min, b_amt)
    b_lag = b_settle - b_due
    grace = obs["grace"][a_idx[b_row]]
    penalty = np.where(b_lag > grace, np.round(total * params.penalty_rate * b_lag, 2), 0.0)
    two = pay & np.take(parts, b_flat) & (c[b_row] != MISSED) & (b_min > 0.02)
    first_amt = np.round(0.5 * b_min, 2)
    first_day = np.maximum(b_settle - 1 - np.take(part_back, b_flat), b_stmt)
    p_acct = np.concatenate([b_acct[two], b_acct[pay]])
    p_bill = np.concatenate([b_id[two], b_id[pay]])
    p_day = np.concatenate([first_day[two], b_settle[pay]])
    p_amt = np.concatenate([first_amt[two], np.round(total - np.where(two, first_amt, 0) + penalty, 2)[pay]])
    order = np.argsort((p_acct << 32) | ((p_day - base) << 16) | (p_bill & 0xFFFF), kind="stable")
    payments = pa.table({
        "account_id": p_acct[order],
        "bill_id": p_bill[order],
        "payment_date": _date(p_day[order]),
        "amount": p_amt[order],
    })
    # a finished loan closes on the day its last bill is settled
    loan_bill = ~rev[a_idx[b_row]]
    la, ls = b_acct[loan_bill], np.where(b_conv[loan_bill] >= 0, b_conv[loan_bill], b_settle[loan_bill])
    lane_of = a_idx[b_row][loan_bill]
    mon = m_idx[b_row][loan_bill]
    ids, start = np.unique(la, return_index=True)
    if len(ids):
        unpaid = np.add.reduceat((ls < 0).astype(np.int64), start)
        last = np.maximum.reduceat(ls, start)
        last_month = np.maximum.reduceat(mon, start)
        lane = lane_of[start]
        j = (ids % SLOTS - 1).astype(np.int64)
        finished = last_month == obs["loan_open"][lane, j] + obs["loan_term"][lane, j]
        day = np.where((unpaid == 0) & finished, last, -1)
    else:
        day = np.zeros(0, np.int64)
    return bills, payments, (ids, day)


def _next_cure_month(cured: np.ndarray, a_idx: np.ndarray, m_idx: np.ndarray) -> np.ndarray:
    """For each lane-month, the first later month in which the lane cured its arrears (W if none)."""
    W = cured.shape[1]
    rows, months = np.nonzero(cured)  # lane-major, months ascending
    key = rows * (W + 1) + months
    pos = np.searchsorted(key, a_idx * (W + 1) + m_idx + 1)
    hit = pos < len(key)
    found = np.where(hit, key[np.minimum(pos, max(len(key) - 1, 0))] if len(key) else 0, -1)
    same = hit & (found // (W + 1) == a_idx)
    return np.where(same, found % (W + 1), W)


def _limits(customer_id, obs, rev_open, limit0, loan_lane, loan_j, loan_open_month, band_limit, pshare, changes,
            start_day, due_dom) -> pa.Table:
    """Limit history: a line's opening limit and each change; a loan's principal on the day it is taken."""
    rev, cidx = obs["rev"], obs["cidx"]
    last_day = obs["end_day"][obs["last_month"]]
    lines = np.flatnonzero(rev & (rev_open <= last_day))
    ids = [customer_id[cidx[lines]] * SLOTS, customer_id[cidx[loan_lane]] * SLOTS + 1 + loan_j]
    dates = [rev_open[lines], start_day[loan_open_month] + due_dom[loan_lane] - 1]
    values = [limit0[lines], np.round(band_limit[loan_lane] * pshare[loan_lane, loan_j], -2)]
    for idx, m, new in changes:
        keep = rev[idx] & (rev_open[idx] < start_day[m])
        ids.append(customer_id[cidx[idx[keep]]] * SLOTS)
        dates.append(np.full(keep.sum(), start_day[m]))
        values.append(new[keep])
    a, d, v = np.concatenate(ids), np.concatenate(dates), np.concatenate(values)
    order = np.lexsort((d, a))
    return pa.table({"account_id": a[order], "effective_date": _date(d[order]), "credit_limit": v[order]})
