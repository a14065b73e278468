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
import pandas as pd
from numba import njit

from features.targets import TARGETS
from simulation.macro import seasonal, stress_level, stress_path
from simulation.params import EARLY, LAG1, LAG2, LATE, MISSED, ON_TIME, WorldParams

K, F, S = 3, 2, 4
HORIZON = 5  # bills due in months T+1..T+5 can reach 30 DPD inside a 6-month window (due day <= 20)


def prior(params: WorldParams, band: np.ndarray) -> np.ndarray:
    """P(k, f, s_0 | income band), shape (C, K, F, S)."""
    pk = params.risk_given_band[band]  # (C, K)
    pf = np.array([1 - params.forgetful_share, params.forgetful_share])
    return pk[:, :, None, None] * pf[None, None, :, None] * params.initial_state[None, :, None, :]


@njit(cache=True)
def _emit(out, surv, pmin, putil, pconv, pcure, has, c, lag, x, g, rev, converted, min_only, util_b, eligible,
          arrears_start, cured, cidx, e_cens, e_full):
    """Multiply each account's month likelihood, given (f, s), into its customer's: censored and full."""
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
                    if c[a] == MISSED:
                        lf = out[s, f, gi, MISSED]
                        lc = (out[s, f, gi, LAG1] * (x[a] < 1) + out[s, f, gi, LAG2] * (x[a] < 2)
                              + out[s, f, gi, LATE] * surv[a] + out[s, f, gi, MISSED])
                    else:
                        lf = out[s, f, gi, c[a]]
                        if rev[a] and not converted[a]:
                            lf *= pmin[s] if min_only[a] else 1.0 - pmin[s]
                        if lag[a] <= x[a]:
                            lc = lf
                        else:
                            lc = (out[s, f, gi, LAG1] * (x[a] < 1) + out[s, f, gi, LAG2] * (x[a] < 2)
                                  + out[s, f, gi, LATE] * surv[a] + out[s, f, gi, MISSED])
                    if rev[a]:
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
          obs["has_obl"][:, m], obs["outcome"][:, m], obs["lag"][:, m], x, obs["grace"], obs["rev"],
          obs["converted"][:, m], obs["min_only"][:, m], obs["util_bucket"][:, m], obs["eligible"][:, m],
          obs["arrears_start"][:, m], obs["cured"][:, m], obs["cidx"], e_cens, e_full)
    return e_cens, e_full


def forward(params: WorldParams, obs: dict, trans: np.ndarray):
    """Yield (m, censored posterior at the end of month m) for m = 0..M-1; each posterior is (C, K, F, S)."""
    M = obs["has_obl"].shape[1]
    alpha = prior(params, obs["band"])
    for m in range(M):
        if m:
            alpha = np.einsum("ckfs,kst->ckft", alpha, trans[m], optimize=True)
        e_cens, e_full = emissions(params, obs, m)
        post = alpha * e_cens[:, None]
        yield m, post / post.sum(axis=(1, 2, 3), keepdims=True)
        alpha = alpha * e_full[:, None]
        alpha /= alpha.sum(axis=(1, 2, 3), keepdims=True)


def no_miss_tables(params: WorldParams, future: np.ndarray) -> np.ndarray:
    """P(no missed payment in the next r months | k, s now), r = 0..HORIZON, from the next months'
    transitions `future` (HORIZON, K, S, S). Shape (HORIZON + 1, K, S)."""
    keep = 1.0 - params.outcome_table()[:, 0, 0, MISSED]  # P(missed) depends on the state only
    out = np.ones((HORIZON + 1, K, S))
    for r in range(1, HORIZON + 1):
        v = np.ones((K, S))
        for j in range(r, 0, -1):  # months T+r .. T+1, backwards
            v = np.einsum("kst,kt->ks", future[j - 1], keep[None, :] * v)
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
    actual = np.stack([params.transition(x) for x in stress_path(params, scenario, M + HORIZON + 1, shock)])
    level = stress_level(scenario, M, shock) * params.shock_level

    def forecast(m: int) -> np.ndarray:
        months = np.arange(m + 1, m + HORIZON + 1)
        return np.stack([params.transition(level[m] + x) for x in seasonal(params, months)])

    return actual, forecast


@njit(cache=True)
def _rows(post, ci, kt, ft, st, g, x, surv, unsettled, remaining, has_next, dpd30, out, p_miss,
          tables_true, tables_bayes, res):
    """Per row: 'true' (at the hidden k, f, s) and 'bayes' (posterior-weighted) probabilities of each target.
    tables_*: (no-miss (H+1, K, S), early warning (K, F, G, S), beyond grace (K, F, G, S)). res: (8, R)."""
    nan = np.nan
    for r in range(len(ci)):
        gi = g[r]
        for kind in range(2):
            nomiss, ew, ewb = tables_true if kind == 0 else tables_bayes
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
                                 + out[s, f, gi, LATE] * surv[r] + out[s, f, gi, MISSED])
                            q = p_miss[s] / u
                        acc[0] += w * (1.0 - (1.0 - q) * nomiss[remaining[r], k, s])
                        acc[1] += w * ew[k, f, gi, s]
                        acc[2] += w * ewb[k, f, gi, s]
                        acc[3] += w * (1.0 - q)
            res[0 + kind, r] = nan if dpd30[r] else min(max(acc[0], 0.0), 1.0)
            res[2 + kind, r] = min(max(acc[1], 0.0), 1.0) if has_next[r] else nan
            res[4 + kind, r] = min(max(acc[2], 0.0), 1.0) if has_next[r] else nan
            res[6 + kind, r] = min(max(acc[3], 0.0), 1.0) if (unsettled[r] and not dpd30[r]) else nan


def truth_table(params: WorldParams, acc: np.ndarray, obs: dict) -> pd.DataFrame:
    """One row per account and month end while the account is on the book."""
    M = obs["has_obl"].shape[1]
    actual, forecast = _macro_paths(params, obs, M)
    out = params.outcome_table()
    p_miss = np.ascontiguousarray(out[:, 0, 0, MISSED])
    rev, grace, cidx = obs["rev"], obs["grace"], obs["cidx"]
    risk, forgetful, state = obs["risk"], obs["forgetful"], obs["state"]
    frames = []
    for m, post in forward(params, obs, actual[:M]):
        T = obs["end_day"][m]
        arrears = obs["arrears_end"][:, m]
        x_all = T - obs["due_day_abs"][:, m]
        unpaid = obs["has_obl"][:, m] & ((obs["outcome"][:, m] == MISSED) | (obs["lag"][:, m] > x_all))
        # a cash loan is on the book while installments remain after T or something is unpaid
        on_book = ((obs["charged_off"] > m) & (obs["open_day"] <= T)
                   & (rev | (m < obs["last_loan_month"]) | unpaid | (arrears >= 0)))
        rows = np.flatnonzero(on_book)
        if not len(rows):
            continue
        x = x_all[rows]
        unsettled = unpaid[rows]
        ci = cidx[rows]
        fcst = forecast(m)
        tables = [(no_miss_tables(params, future), *late_tables(params, nxt))
                  for future, nxt in ((actual[m + 1:m + 1 + HORIZON], actual[m + 1]), (fcst, fcst[0]))]
        res = np.empty((8, len(rows)))
        _rows(post, ci, risk[ci], forgetful[ci], state[ci, m], grace[rows], x, params.late_survival(np.maximum(x, 0)),
              unsettled, np.where(rev[rows], HORIZON, np.clip(obs["last_loan_month"][rows] - m, 0, HORIZON)),
              rev[rows] | (obs["last_loan_month"][rows] > m), (arrears[rows] >= 0) & (arrears[rows] < m),
              out, p_miss, tuple(np.ascontiguousarray(t) for t in tables[0]),
              tuple(np.ascontiguousarray(t) for t in tables[1]), res)
        frame = {"account_id": acc[rows], "as_of": np.full(len(rows), T), "latent_state": state[ci, m]}
        for i, name in enumerate(col for t in TARGETS for col in (t.truth_true, t.truth_bayes)):
            frame[name] = res[i]
        frames.append(pd.DataFrame(frame))
    tr = pd.concat(frames, ignore_index=True)
    tr = tr.iloc[np.argsort(tr["account_id"].to_numpy(), kind="stable")].reset_index(drop=True)
    tr["as_of"] = tr["as_of"].to_numpy().astype("datetime64[D]").astype("datetime64[s]")
    return tr
