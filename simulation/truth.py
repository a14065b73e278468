"""Ground truth: the best possible predictions, computed exactly on the simulator's own model.

For every account and month end T, two probabilities per target (DESIGN.md, Targets):
  *_true   given the hidden state at T (risk type, forgetfulness, state) and everything observed -- what a
           model could reach only by reading minds; the actual future macro path is used;
  *_bayes  given only what a lender knows at T: the customer's observed history on all of their accounts,
           their static attributes and the macro index up to T (forecast by persistence after T).
The Bayes-optimal filter is the HMM forward algorithm over the joint hidden variable (k, f, s): 3 x 2 x 4 =
24 values per customer. Month m's observations (outcome, minimum-only, spend bucket, conversion, cure) depend
only on that month's (f, s), so the forward recursion is exact. At T, the bill due this month may still be
unpaid: its outcome is then only known to be 'late by more than x days, or missed' (censored); one month
later it is fully known. So the filter keeps a fully informed vector for months before T and applies the
censored likelihood for month T only.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from features.targets import TARGETS
from simulation.macro import seasonal, stress_level, stress_path
from simulation.params import EARLY, LAG1, LAG2, LATE, MISSED, ON_TIME, WorldParams

K, F, S = 3, 2, 4
HORIZON = 5  # bills due in months T+1..T+5 can reach 30 DPD inside a 6-month window (due day <= 20)


def prior(params: WorldParams, band: np.ndarray, starting: np.ndarray) -> np.ndarray:
    """P(k, f, s_0 | income band), shape (C, K, F, S): the steady book's risk mix for the customers the world
    starts with (`starting`), the applicants' for those who arrive later."""
    pk = np.where(np.asarray(starting)[:, None], params.book_risk_given_band[band], params.risk_given_band[band])
    pf = np.array([1 - params.forgetful_share, params.forgetful_share])
    return pk[:, :, None, None] * pf[None, None, :, None] * params.initial_state[None, :, None, :]


@njit(cache=True)
def _emit(out, surv, pmin, putil, pconv, pcure, close, has, stmt, c, lag, x, g, converted, min_only, util_b, eligible,
          arrears_start, cured, closable, closing, cidx, e_cens, e_full):
    """Multiply each lane's month likelihood, given (f, s), into its customer's: censored and full. A line that
    could have closed at the month end and did not says a little about a bill still unpaid then: closure
    needs the bill not to be missed."""
    for a in range(len(c)):
        if not (has[a] or eligible[a] or arrears_start[a]):
            continue
        ci = cidx[a]
        gi = g[a]
        for f in range(2):
            for s in range(4):
                lc = 1.0
                lf = 1.0
                if has[a]:
                    unpaid = (out[s, f, gi, LAG1] * (x[a] < 1) + out[s, f, gi, LAG2] * (x[a] < 2)
                              + out[s, f, gi, LATE] * surv[a])
                    if closing[a]:
                        unpaid *= close
                    elif closable[a]:
                        unpaid *= 1.0 - close
                    if c[a] == MISSED:
                        lf = out[s, f, gi, MISSED]
                        lc = unpaid + out[s, f, gi, MISSED]
                    else:
                        lf = out[s, f, gi, c[a]]
                        if stmt[a] and not converted[a] and not closing[a]:
                            lf *= pmin[s] if min_only[a] else 1.0 - pmin[s]
                        # settled by T: known in full; else censored (a closing line's bill was not missed)
                        lc = lf if lag[a] <= x[a] else unpaid + out[s, f, gi, MISSED] * (not closing[a])
                    if stmt[a] and util_b[a] >= 0:
                        lc *= putil[s, util_b[a]]
                        lf *= putil[s, util_b[a]]
                common = 1.0
                if eligible[a]:
                    common *= pconv[s] if converted[a] else 1.0 - pconv[s]
                if arrears_start[a]:
                    common *= pcure[s] if cured[a] else 1.0 - pcure[s]
                e_cens[ci, f, s] *= lc * common
                e_full[ci, f, s] *= lf * common


def emissions(params: WorldParams, obs: dict, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Customer likelihoods of month m's observations given (f, s), shape (C, F, S) each: as known at the end
    of month m (this month's unpaid bill censored) and as known a month later (everything resolved)."""
    C = obs["n_customers"]
    x = obs["end_day"][m] - obs["due_day_abs"][:, m]
    e_cens, e_full = np.ones((C, F, S)), np.ones((C, F, S))
    _emit(params.outcome_table(), params.late_survival(np.maximum(x, 0)), np.asarray(params.min_only_probs),
          np.ascontiguousarray(params.util_probs), np.asarray(params.convert_probs), np.asarray(params.cure_probs),
          params.closure_rate, obs["has_obl"][:, m], obs["stmt"][:, m], obs["outcome"][:, m], obs["lag"][:, m], x,
          obs["grace"], obs["converted"][:, m], obs["min_only"][:, m], obs["util_bucket"][:, m],
          obs["eligible"][:, m], obs["arrears_start"][:, m], obs["cured"][:, m], obs["closable"][:, m],
          obs["closing"][:, m], obs["cidx"], e_cens, e_full)
    return e_cens, e_full


def forward(params: WorldParams, obs: dict, trans: np.ndarray):
    """Yield (m, censored posterior at the end of month m) for m = 0..M-1; each posterior is (C, K, F, S). A
    customer's filter starts from the prior in the month they arrive."""
    M = obs["has_obl"].shape[1]
    start = prior(params, obs["band"], obs["cohort"] == 0)
    alpha = start.copy()
    post = np.empty_like(alpha)
    for m in range(M):
        _advance(alpha, np.ascontiguousarray(trans[m]), start, obs["cohort"] >= m, m > 0)
        e_cens, e_full = emissions(params, obs, m)
        _update(alpha, e_cens, e_full, post)
        yield m, post.copy()


@njit(cache=True)
def _advance(alpha, trans, start, waiting, move):
    """One month of the hidden chain, in place: alpha[c, k, f] <- alpha[c, k, f] @ trans[k]; a customer not yet
    arrived, or arriving now, holds the prior."""
    row = np.empty(4)
    for c in range(alpha.shape[0]):
        if waiting[c]:
            alpha[c] = start[c]
            continue
        if not move:
            continue
        for k in range(3):
            for f in range(2):
                for t in range(4):
                    acc = 0.0
                    for s in range(4):
                        acc += alpha[c, k, f, s] * trans[k, s, t]
                    row[t] = acc
                alpha[c, k, f] = row


@njit(cache=True)
def _update(alpha, e_cens, e_full, post):
    """post <- alpha x the censored likelihood, normalised; alpha <- alpha x the full likelihood, normalised."""
    for c in range(alpha.shape[0]):
        tc = 0.0
        tf = 0.0
        for k in range(3):
            for f in range(2):
                for s in range(4):
                    a = alpha[c, k, f, s]
                    post[c, k, f, s] = a * e_cens[c, f, s]
                    alpha[c, k, f, s] = a * e_full[c, f, s]
                    tc += post[c, k, f, s]
                    tf += alpha[c, k, f, s]
        for k in range(3):
            for f in range(2):
                for s in range(4):
                    post[c, k, f, s] /= tc
                    alpha[c, k, f, s] /= tf


def no_miss_tables(params: WorldParams, future: np.ndarray, closure: float = 0.0) -> np.ndarray:
    """P(no missed payment in the next r months | k, s now), r = 0..HORIZON, from the next months'
    transitions `future` (HORIZON, K, S, S). A line in good standing may be closed at a month end (`closure`):
    it then has nothing more to miss. Shape (HORIZON + 1, K, S)."""
    keep = 1.0 - params.outcome_table()[:, 0, 0, MISSED]  # P(missed) depends on the state only
    out = np.ones((HORIZON + 1, K, S))
    for r in range(1, HORIZON + 1):
        v = np.ones((K, S))
        for j in range(r, 0, -1):  # months T+r .. T+1, backwards
            after = v if j == r else closure + (1.0 - closure) * v  # closing after month j ends the risk
            v = np.einsum("kst,kt->ks", future[j - 1], keep[None, :] * after)
        out[r] = v
    return out


def late_tables(params: WorldParams, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(next bill paid 1+ days late | k, f, grace, s now) and P(... beyond grace), each (K, F, G, S)."""
    out = params.outcome_table()  # (S, F, G, 6)
    late = 1.0 - out[..., EARLY] - out[..., ON_TIME]
    g = np.arange(4)
    beyond = (out[..., LAG1] * (g < 1)[None, None, :] + out[..., LAG2] * (g < 2)[None, None, :]
              + out[..., LATE] * params.late_survival(g)[None, None, :] + out[..., MISSED])
    ew = np.einsum("kst,tfg->kfgs", nxt, late)
    ewb = np.einsum("kst,tfg->kfgs", nxt, beyond)
    return ew, ewb


def _macro_paths(params: WorldParams, obs: dict, M: int):
    """Transitions for months 0..M+HORIZON: actual path, and the lender's persistence forecast from each m."""
    scenario, shock = obs["scenario"], obs["shock_month"]
    actual = np.stack([params.transition(x)
                       for x in stress_path(params, scenario, M + HORIZON + 1, shock, obs["first_month"])])
    level = stress_level(scenario, M, shock) * params.shock_level

    def forecast(m: int) -> np.ndarray:
        months = np.arange(m + 1, m + HORIZON + 1)
        return np.stack([params.transition(level[m] + x) for x in seasonal(params, months, obs["first_month"])])

    return actual, forecast


@njit(cache=True)
def _rows(post, ci, kt, ft, st, g, x, surv, unsettled, remaining, line, closable, close, has_next, dpd30, out, p_miss,
          tables_true, tables_bayes, res):
    """Per row: 'true' (at the hidden k, f, s) and 'bayes' (posterior-weighted) probabilities of each target.
    tables_*: (no-miss of a loan (H+1, K, S), of a line that may close (H+1, K, S), early warning (K, F, G, S),
    beyond grace (K, F, G, S)). res: (8, R)."""
    nan = np.nan
    for r in range(len(ci)):
        gi = g[r]
        for kind in range(2):
            nomiss_loan, nomiss_line, ew, ewb = tables_true if kind == 0 else tables_bayes
            nomiss = nomiss_line if line[r] else nomiss_loan
            acc = np.zeros(4)
            for k in range(3):
                for f in range(2):
                    for s in range(4):
                        if kind == 0 and not (k == kt[r] and f == ft[r] and s == st[r]):
                            continue
                        w = 1.0 if kind == 0 else post[ci[r], k, f, s]
                        if w == 0.0:
                            continue
                        q = 0.0
                        if unsettled[r]:
                            u = (out[s, f, gi, LAG1] * (x[r] < 1) + out[s, f, gi, LAG2] * (x[r] < 2)
                                 + out[s, f, gi, LATE] * surv[r])
                            if closable[r]:  # still open: had the bill not been missed, it might have closed
                                u *= 1.0 - close
                            q = p_miss[s] / (u + p_miss[s])
                        acc[0] += w * (1.0 - (1.0 - q) * nomiss[remaining[r], k, s])
                        acc[1] += w * ew[k, f, gi, s]
                        acc[2] += w * ewb[k, f, gi, s]
                        acc[3] += w * (1.0 - q)
            res[0 + kind, r] = nan if dpd30[r] else min(max(acc[0], 0.0), 1.0)
            res[2 + kind, r] = min(max(acc[1], 0.0), 1.0) if has_next[r] else nan
            res[4 + kind, r] = min(max(acc[2], 0.0), 1.0) if has_next[r] else nan
            res[6 + kind, r] = min(max(acc[3], 0.0), 1.0) if (unsettled[r] and not dpd30[r]) else nan


def truth_table(params: WorldParams, acc: np.ndarray, obs: dict) -> pa.Table:
    """One row per account and as-of month end (the months after the history) while the account is on the
    book; `acc` is the account of each lane-month."""
    M = obs["has_obl"].shape[1]
    actual, forecast = _macro_paths(params, obs, M)
    out = params.outcome_table()
    p_miss = np.ascontiguousarray(out[:, 0, 0, MISSED])
    rev, grace, cidx = obs["rev"], obs["grace"], obs["cidx"]
    risk, forgetful, state = obs["risk"], obs["forgetful"], obs["state"]
    lanes = np.arange(len(rev))
    frames = []
    for m, post in forward(params, obs, actual[:M]):
        if m < obs["history"] or m > obs["last_month"]:
            continue
        T = obs["end_day"][m]
        arrears = obs["arrears_end"][:, m]
        x_all = T - obs["due_day_abs"][:, m]
        unpaid = obs["has_obl"][:, m] & ((obs["outcome"][:, m] == MISSED) | (obs["lag"][:, m] > x_all))
        loan = obs["loan_at"][:, m].astype(np.int64)
        j = np.maximum(loan, 0)
        last = np.where(loan >= 0, obs["loan_open"][lanes, j] + obs["loan_term"][lanes, j], -1)
        # a line is on the book from its opening until closed or charged off; a cash loan while installments
        # remain after T or something is unpaid
        on_book = (obs["charged_off"] > m) & np.where(
            rev, (obs["rev_open"] <= T) & (obs["closed_at"] > m),
            (loan >= 0) & ((m < last) | unpaid | (arrears >= 0)))
        rows = np.flatnonzero(on_book)
        if not len(rows):
            continue
        x = x_all[rows]
        ci = cidx[rows]
        dpd30 = (arrears[rows] >= 0) & (arrears[rows] < m)
        fcst = forecast(m)
        tables = [(no_miss_tables(params, future), no_miss_tables(params, future, params.closure_rate),
                   *late_tables(params, nxt))
                  for future, nxt in ((actual[m + 1:m + 1 + HORIZON], actual[m + 1]), (fcst, fcst[0]))]
        res = np.empty((8, len(rows)))
        line = rev[rows]
        _rows(post, ci, risk[ci], forgetful[ci], state[ci, m], grace[rows], x, params.late_survival(np.maximum(x, 0)),
              unpaid[rows], np.where(line, HORIZON, np.clip(last[rows] - m, 0, HORIZON)), line,
              obs["closable"][rows, m], params.closure_rate,
              np.where(line, True, last[rows] > m) & ~dpd30, dpd30,  # early warning: below 30 DPD
              out, p_miss, tuple(np.ascontiguousarray(t) for t in tables[0]),
              tuple(np.ascontiguousarray(t) for t in tables[1]), res)
        frames.append((acc[rows, m], np.full(len(rows), T, dtype=np.int32), state[ci, m], res))
    names = [c for t in TARGETS for c in (t.truth_true, t.truth_bayes)]
    if not frames:
        frames = [(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros((len(names), 0)))]
    account, as_of, latent, res = (np.concatenate(x, axis=-1) for x in zip(*frames, strict=True))
    order = np.lexsort((as_of, account))
    columns = {"account_id": account[order], "as_of": pa.array(as_of[order], type=pa.date32()),
               "latent_state": latent[order]}
    columns.update({name: res[i, order] for i, name in enumerate(names)})
    return pa.table(columns)
