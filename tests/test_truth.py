"""The ground truth is what it claims: exact Bayes filtering, calibrated, and better than simple summaries.

1. On a tiny world, the forward filter's posteriors and the truth table's probabilities equal a brute-force
   enumeration of every hidden path, with the likelihoods written out again here the slow way.
2. On simulated outcomes, derived from the tables alone, the Bayes-optimal default probability is
   calibrated by decile, beats a logistic regression on current DPD and late-bill counts on held-out log
   loss, and that regression stays at or below 0.95 x its AUC (the world is not trivial).
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from plain import settlement
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from features.contract import load_tables
from simulation import truth
from simulation.book import book
from simulation.generate import Request, generate
from simulation.macro import stress_path
from simulation.params import EARLY, LAG1, LAG2, LATE, LATE_MIN, MISSED, ON_TIME, WorldParams
from simulation.world import SLOTS, simulate_chunk

M_TINY = 4


@pytest.fixture(scope="module")
def tiny():
    params = WorldParams()
    bk = book(1_500, params, M_TINY)
    chunk = simulate_chunk(params, bk, 0, bk.n_customers, history=0, months=M_TINY, seed=21, scenario="baseline",
                           shock_month=2)
    return params, chunk


def p_unpaid_after(params: WorldParams, outcome: int, x: int) -> float:
    """P(a bill with this outcome is still unpaid x days after its due date), from the lag definitions."""
    pmf = params.late_lag_pmf()
    return {EARLY: 0.0, ON_TIME: 0.0, LAG1: float(x < 1), LAG2: float(x < 2),
            LATE: sum(p for lag, p in enumerate(pmf, start=LATE_MIN) if lag > x), MISSED: 1.0}[outcome]


def slow_likelihood(params, obs, a, m, f, s, censored) -> float:
    """One lane-month's likelihood given (f, s), spelled out. A line that could close at the month end and
    did (or did not) tells about a bill still unpaid then: only a bill that is not missed allows closing."""
    out = params.outcome_table()
    like = 1.0
    if obs["has_obl"][a, m]:
        c, g = int(obs["outcome"][a, m]), int(obs["grace"][a])
        x = int(obs["end_day"][m] - obs["due_day_abs"][a, m])
        unpaid_at_t = c == MISSED or obs["lag"][a, m] > x
        closing, close = obs["closing"][a, m], params.closure_rate
        if censored and unpaid_at_t:
            not_missed = sum(out[s, f, g, c2] * p_unpaid_after(params, c2, x) for c2 in range(5))
            if closing:
                like *= not_missed * close
            elif obs["closable"][a, m]:
                like *= not_missed * (1 - close) + out[s, f, g, MISSED]
            else:
                like *= not_missed + out[s, f, g, MISSED]
        else:
            like *= out[s, f, g, c]
            if obs["stmt"][a, m] and not obs["converted"][a, m] and not closing and c != MISSED:
                p = params.min_only_probs[s]
                like *= p if obs["min_only"][a, m] else 1 - p
        if obs["stmt"][a, m] and obs["util_bucket"][a, m] >= 0:  # no credit left: nothing drawn, nothing seen
            like *= params.util_probs[s, obs["util_bucket"][a, m]]
    if obs["eligible"][a, m]:
        p = params.convert_probs[s]
        like *= p if obs["converted"][a, m] else 1 - p
    if obs["arrears_start"][a, m]:
        p = params.cure_probs[s]
        like *= p if obs["cured"][a, m] else 1 - p
    return like


def brute_force_posterior(params, obs, trans, accounts, band, cohort, m) -> np.ndarray:
    """P(k, f, s_m | everything observed at the end of month m), by summing over every hidden path from the
    month the customer arrived (the starting book's risk mix for those there from the start)."""
    post = np.zeros((3, 2, 4))
    arrive = int(cohort)
    mix = params.book_risk_given_band if arrive == 0 else params.risk_given_band
    if m < arrive:  # not on the book yet: the prior
        for k, f in itertools.product(range(3), range(2)):
            post[k, f] = mix[band, k] * (params.forgetful_share if f else 1 - params.forgetful_share) \
                * params.initial_state[k]
        return post / post.sum()
    like = {(j, f, s): np.prod([slow_likelihood(params, obs, a, j, f, s, censored=j == m) for a in accounts])
            for j in range(arrive, m + 1) for f in range(2) for s in range(4)}
    for k, f in itertools.product(range(3), range(2)):
        pk = mix[band, k] * (params.forgetful_share if f else 1 - params.forgetful_share)
        for path in itertools.product(range(4), repeat=m + 1 - arrive):
            w = pk * params.initial_state[k, path[0]] * like[arrive, f, path[0]]
            for i in range(1, len(path)):
                w *= trans[arrive + i][k, path[i - 1], path[i]] * like[arrive + i, f, path[i]]
            post[k, f, path[-1]] += w
    return post / post.sum()


def brute_force_no_miss(params, future, k, s, months_due, close=0.0) -> float:
    """P(no missed payment in the next months with a bill due | k, s now), over every future path: a line
    may be closed after any month it did not miss (`close`), and has nothing more to miss then."""
    p_miss = params.outcome_table()[:, 0, 0, MISSED]
    total = 0.0
    for path in itertools.product(range(4), repeat=len(future)):
        w, prev = 1.0, s
        for j, nxt in enumerate(path):
            w *= future[j][k, prev, nxt]
            prev = nxt
        kept = [1 - p_miss[t] for t in path[:months_due]]
        # closed after month j (j < months_due - 1) having missed nothing so far, or never closed and no miss
        survive = sum(np.prod(kept[:j + 1]) * (1 - close) ** j * close for j in range(months_due - 1))
        survive += np.prod(kept) * (1 - close) ** max(months_due - 1, 0)
        total += w * survive
    return total


def _interesting_customers(obs, n=12):
    """Customers with something to infer from: a bill still unpaid at a month end (censored), a cure, a
    conversion or a short lag -- then a few plain ones."""
    x = obs["end_day"][None, :] - obs["due_day_abs"]
    unpaid = obs["has_obl"] & ((obs["outcome"] == MISSED) | (obs["lag"] > x))
    picked = []
    arrived = obs["has_obl"] & (obs["cohort"][obs["cidx"]] > 0)[:, None]
    for mask in (unpaid, obs["closing"], arrived, obs["cured"], obs["converted"], obs["outcome"] == LAG1,
                 obs["has_obl"]):
        cands = [c for c in np.unique(obs["cidx"][mask.any(axis=1)]) if c not in picked]
        picked += cands[: n // 4 if len(picked) < n else 3]
    return np.array(picked)


def test_forward_filter_equals_enumeration_of_hidden_paths(tiny):
    params, chunk = tiny
    obs = chunk.observed
    trans = np.stack([params.transition(x) for x in obs["stress"]])
    posts = dict(truth.forward(params, obs, trans))
    customers = _interesting_customers(obs)
    assert len(customers) >= 10
    for c in customers:
        accounts = np.flatnonzero(obs["cidx"] == c)
        for m in range(M_TINY):
            expected = brute_force_posterior(params, obs, trans, accounts, obs["band"][c], obs["cohort"][c], m)
            np.testing.assert_allclose(posts[m][c], expected, rtol=1e-9, atol=1e-12)


def test_truth_probabilities_equal_enumeration(tiny):
    params, chunk = tiny
    obs, tr = chunk.observed, chunk.truth.to_pandas(date_as_object=False)
    simulated = obs["has_obl"].shape[1]  # a month past the extraction date is simulated too
    stress = stress_path(params, "baseline", simulated + truth.HORIZON + 1, 2, obs["first_month"])
    trans = np.stack([params.transition(x) for x in stress])
    posts = dict(truth.forward(params, obs, trans[:simulated]))
    out = params.outcome_table()
    checked = cures = 0
    no_miss = {}  # the enumeration of future paths, once per month, hidden type and state
    for c in _interesting_customers(obs, n=8):
        rows_of = tr[tr["account_id"].to_numpy() // SLOTS == c + 1]  # customer ids run 1.. in the chunk
        for _, row in rows_of.iterrows():
            slot = int(row["account_id"] % SLOTS)
            a = int(np.flatnonzero((obs["cidx"] == c) & (obs["rev"] == (slot == 0)))[0])
            m = int(np.searchsorted(obs["end_day"], row["as_of"].to_datetime64().astype("datetime64[D]")
                                    .astype(np.int64)))
            g = int(obs["grace"][a])
            x = int(obs["end_day"][m] - obs["due_day_abs"][a, m])
            unpaid = bool(obs["has_obl"][a, m] and (obs["outcome"][a, m] == MISSED or obs["lag"][a, m] > x))
            last = obs["loan_open"][a, slot - 1] + obs["loan_term"][a, slot - 1]
            due = truth.HORIZON if obs["rev"][a] else int(np.clip(last - m, 0, truth.HORIZON))
            close = params.closure_rate if obs["rev"][a] else 0.0
            future = trans[m + 1:m + 1 + truth.HORIZON]
            p_def, p_ew, p_cure = np.zeros((3, 2, 4)), np.zeros((3, 2, 4)), np.zeros((3, 2, 4))
            for k, f, s in itertools.product(range(3), range(2), range(4)):
                q = 0.0
                if unpaid:
                    u = sum(out[s, f, g, c2] * p_unpaid_after(params, c2, x) for c2 in range(5))
                    u *= (1 - params.closure_rate) if obs["closable"][a, m] else 1.0
                    q = out[s, f, g, MISSED] / (u + out[s, f, g, MISSED])
                key = (m, k, s, due, close)
                if key not in no_miss:
                    no_miss[key] = brute_force_no_miss(params, future, k, s, due, close)
                p_def[k, f, s] = 1 - (1 - q) * no_miss[key]
                p_cure[k, f, s] = 1 - q
                p_ew[k, f, s] = sum(future[0][k, s, s2] * (1 - out[s2, f, g, EARLY] - out[s2, f, g, ON_TIME])
                                    for s2 in range(4))
            post = posts[m][c]
            k, f, s = obs["risk"][c], obs["forgetful"][c], obs["state"][c, m]
            if np.isfinite(row["p_default_bayes"]):
                assert row["p_default_bayes"] == pytest.approx((post * p_def).sum(), rel=1e-9, abs=1e-12)
                assert row["p_default_true"] == pytest.approx(p_def[k, f, s], rel=1e-9, abs=1e-12)
                checked += 1
            if np.isfinite(row["p_early_warning_bayes"]):
                assert row["p_early_warning_bayes"] == pytest.approx((post * p_ew).sum(), rel=1e-9)
                assert row["p_early_warning_true"] == pytest.approx(p_ew[k, f, s], rel=1e-9)
            if np.isfinite(row["p_self_cure_bayes"]):
                assert row["p_self_cure_bayes"] == pytest.approx((post * p_cure).sum(), rel=1e-9)
                cures += 1
    assert checked >= 20 and cures >= 1


# --------------------------------------------------------------------------------------- outcomes


def _sample_rows(tables, months_window=6):
    """One as-of month end per account, drawn from the account id alone (never from what happened next)."""
    tr = tables.truth
    ends = np.sort(tr["as_of"].unique())
    last_full = tables.extraction_date - pd.DateOffset(months=months_window)
    ends = ends[ends <= last_full]
    pick = ends[(tr["account_id"].to_numpy() * 2654435761 % 2**32) % len(ends)]
    return tr[tr["as_of"].to_numpy() == pick].reset_index(drop=True)


def _outcomes_and_summaries(tables, rows) -> pd.DataFrame:
    """Per row: reached 30 DPD in (T, T+6m]; 30+ DPD at T; current DPD; late bills among the last 6 and 12."""
    cols = ["account_id", "bill_id", "statement_date", "due_date", "settled"]
    b = settlement(tables)[cols].merge(rows[["account_id", "as_of"]], on="account_id")
    T = b["as_of"]
    end = T + pd.DateOffset(months=6)
    hit30 = b["due_date"] + pd.Timedelta(days=30)
    unpaid_at_30 = b["settled"].isna() | (b["settled"] > hit30)
    b["reach30"] = unpaid_at_30 & (hit30 > T) & (hit30 <= end)
    unpaid_at_t = b["settled"].isna() | (b["settled"] > T)
    due = b["due_date"] <= T
    b["dpd30_now"] = due & unpaid_at_t & (hit30 <= T)
    b["dpd"] = np.where(due & unpaid_at_t, (T - b["due_date"]).dt.days, 0)
    lag = (b["settled"] - b["due_date"]).dt.days
    b["late"] = due & np.where(unpaid_at_t, (T - b["due_date"]).dt.days >= 1, lag >= 1)
    d = b[due].sort_values(["account_id", "due_date", "statement_date", "bill_id"],
                           ascending=[True, False, False, False])
    d["k"] = d.groupby("account_id").cumcount()
    agg = b.groupby("account_id").agg(y=("reach30", "any"), dpd30=("dpd30_now", "any"), dpd=("dpd", "max"))
    agg["late6"] = d[d["k"] < 6].groupby("account_id")["late"].sum()
    agg["late12"] = d[d["k"] < 12].groupby("account_id")["late"].sum()
    return rows.merge(agg.fillna(0).reset_index(), on="account_id", how="left").fillna(
        {"y": False, "dpd30": False, "dpd": 0, "late6": 0, "late12": 0})


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """A world of its own, of 30,000 open accounts: one row per account gives the decile check its 15,000 rows
    and more (the session's world of 12,000 gives about 12,000)."""
    out = tmp_path_factory.mktemp("worlds") / "truth"
    generate(out, Request(30_000, 36, seed=3, scenario="baseline", shock_month=18), progress=False)
    tables = load_tables(out, optional=("truth",))
    return _outcomes_and_summaries(tables, _sample_rows(tables))


def test_truth_population_matches_the_table_definition(outcomes):
    # the truth's default population (not 30+ DPD at T) equals the one derived from bills and payments
    np.testing.assert_array_equal(outcomes["p_default_bayes"].isna().to_numpy(), outcomes["dpd30"].to_numpy())


def test_bayes_default_probability_is_calibrated_by_decile(outcomes):
    d = outcomes[outcomes["p_default_bayes"].notna()]
    assert len(d) > 15_000 and 0.02 < d["y"].mean() < 0.12
    dec = pd.qcut(d["p_default_bayes"].rank(method="first"), 10, labels=False)
    g = d.groupby(dec).agg(n=("y", "size"), obs=("y", "mean"), pred=("p_default_bayes", "mean"),
                           var=("p_default_bayes", lambda p: (p * (1 - p)).sum()))
    half = 1.96 * np.sqrt(g["var"]) / g["n"]
    inside = ((g["obs"] - g["pred"]).abs() <= half).sum()
    assert inside >= 9, g.assign(half=half)


def test_bayes_beats_a_logistic_regression_on_simple_summaries(outcomes):
    d = outcomes[outcomes["p_default_bayes"].notna()]
    X = d[["dpd", "late6", "late12"]].to_numpy(float)
    y = d["y"].to_numpy(bool)
    train = (d["account_id"] % 2 == 0).to_numpy()
    lr = LogisticRegression(max_iter=1_000).fit(X[train], y[train])
    p_lr = lr.predict_proba(X[~train])[:, 1]
    p_bayes = d["p_default_bayes"].to_numpy()[~train]
    assert log_loss(y[~train], p_bayes) < log_loss(y[~train], p_lr)
    auc_lr, auc_bayes = roc_auc_score(y[~train], p_lr), roc_auc_score(y[~train], p_bayes)
    assert auc_lr <= 0.95 * auc_bayes, (auc_lr, auc_bayes)
