"""The policy: its config is checked, and every guardrail holds for any account the scorer can hand it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.config import PolicyError, load_policy
from policy.decide import ACTIVE, CHARGED_OFF, NEW, RECOVERY, control_cell, decide

POLICY = load_policy()


# ---------------------------------------------------------------------------------------------- config


def test_default_policy_loads_and_its_hash_follows_the_settings_not_the_text(tmp_path):
    override = tmp_path / "p.toml"
    override.write_text("# only a comment\n")
    assert load_policy(override).hash == POLICY.hash
    override.write_text("[limit]\nel_budget = 450.0\n")
    changed = load_policy(override)
    assert changed.limit.el_budget == 450.0 and changed.limit.cap == POLICY.limit.cap
    assert changed.hash != POLICY.hash


@pytest.mark.parametrize(("text", "words"), [
    ("[limits]\ncap = 1\n", ["unknown section [limits]"]),
    ("[limit]\ncaps = 1\n", ["[limit]", "unknown key(s) caps"]),
    ("[limit]\nmax_decrease = 1.5\n", ["[limit] max_decrease", "[0, 1]"]),
    ("[limit]\nbands = [{min_score = 500, step = 0.1}, {min_score = 600, step = 0.2}]\n", ["highest min_score first"]),
    ("[limit]\nbands = [{min_score = 500, step = 0.1}]\n", ["last band must have min_score = 0"]),
    ("[collection]\nbaseline = \"letter\"\n", ["baseline 'letter' is not one of the treatments"]),
    ("[collection]\nbuckets = [{min_dpd = 1, cure_threshold = 0.5, likely = \"call\"}]\n", ["unlikely"]),
    ("[score\n", ["is not valid TOML"]),
])
def test_a_broken_policy_file_is_refused_naming_the_file_and_the_key(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    for w in words:
        assert w in message


# ---------------------------------------------------------------------------------------------- decisions


@st.composite
def accounts(draw, n_max: int = 60):
    n = draw(st.integers(1, n_max))
    floats = st.floats
    col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    limit = np.array(col(st.sampled_from([0.0, 200.0, 500.0, 1000.0, 3300.0, 8000.0, 20000.0, 49900.0, 80000.0])))
    util = np.array(col(floats(0, 1.3)))
    state = pd.DataFrame({
        "account_id": np.arange(1, n + 1) * draw(st.integers(1, 10_000)),
        "status": col(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, NEW, CHARGED_OFF])),
        "is_installment": col(st.booleans()),
        "pd_default": col(floats(0.0005, 0.999)),
        "previous_score": col(st.one_of(st.just(np.nan), floats(350, 950).map(round))),
        "dpd_now": col(st.sampled_from([0.0, 0.0, 0.0, 1.0, 2.0, 5.0, 14.0, 15.0, 29.0, 30.0, 59.0, 60.0, 120.0])),
        "days_since_late": col(st.one_of(st.just(np.nan), floats(0, 900).map(round))),
        "utilisation": util,
        "balance_now": util * limit,
        "limit_now": limit,
        "p_early_warning": col(floats(0, 1)),
        "p_self_cure": col(floats(0, 1)),
    })
    state["model_score"] = np.clip(np.round(570 + 57.7 * np.log((1 - state.pd_default) / state.pd_default / 50)),
                                   350, 950)
    return state


@settings(max_examples=300, deadline=None)
@given(accounts())
def test_limit_guardrails_hold_for_any_account(state):
    p = POLICY.limit
    d = decide(state, POLICY)
    lim, new, act = state["limit_now"].to_numpy(), d["new_credit_limit"].to_numpy(), d["limit_action"].to_numpy()
    revolving = ~state["is_installment"].to_numpy()
    active = (state["status"] == ACTIVE).to_numpy()
    late_or_recent = (state["dpd_now"] > 0) | (state["days_since_late"] <= p.no_increase_days_after_late)
    up = act == "increase"
    assert not (up & late_or_recent.to_numpy()).any(), "a raise while late or soon after a late payment"
    assert not (up & (state["utilisation"] < p.increase_min_utilisation).to_numpy()).any()
    assert (new[up] <= lim[up] * (1 + p.max_increase) + 1e-9).all()
    assert (new[up] <= np.maximum(lim[up], p.cap)).all()
    down = act == "decrease"
    assert (new[down] >= lim[down] * (1 - p.max_decrease) - 1e-9).all()
    assert (new[down] >= np.minimum(lim[down], p.floor)).all()
    assert (new[down] >= np.minimum(lim[down], state["balance_now"].to_numpy()[down])).all(), "cut below the balance"
    moved = up | down
    assert np.allclose(np.mod(new[moved], p.round_to), 0), "new limits are multiples of round_to"
    assert ((new > lim) == up).all() and ((new < lim) == (down | (act == "closed") & (lim > 0))).all()
    # expected loss after a raise stays within the budget
    pd_, bal = state["pd_default"].to_numpy(), state["balance_now"].to_numpy()
    el = pd_ * p.lgd * (bal + p.ccf * np.maximum(new - bal, 0))
    assert (el[up] <= p.el_budget + 1e-6).all()
    # freeze exactly for active revolving lines at or beyond freeze_dpd; explicit statuses elsewhere
    frozen = active & revolving & (state["dpd_now"].to_numpy() >= p.freeze_dpd)
    assert ((act == "freeze") == frozen).all()
    assert (new[frozen] == lim[frozen]).all()
    charged = (state["status"] == CHARGED_OFF).to_numpy()
    assert (act[charged] == "closed").all() and (new[charged] == 0).all()
    assert (act[~charged & ~revolving] == "none").all()
    new_acc = (state["status"] == NEW).to_numpy() & revolving
    assert (act[new_acc] == "keep").all() and (new[new_acc] == lim[new_acc]).all()


@settings(max_examples=300, deadline=None)
@given(accounts())
def test_collection_treatments_follow_dpd_self_cure_and_the_control_cell(state):
    c = POLICY.collection
    d = decide(state, POLICY)
    t = d["collection_treatment"].to_numpy()
    dpd, cure = state["dpd_now"].to_numpy(), state["p_self_cure"].to_numpy()
    charged = (state["status"] == CHARGED_OFF).to_numpy()
    late = (dpd > 0) & ~charged
    assert (t[~late & ~charged] == "").all() and (t[charged] == RECOVERY).all()
    legal = late & (dpd >= c.legal_review_dpd) & (state["balance_now"].to_numpy() >= c.legal_review_balance)
    assert (t[legal] == "legal_review").all()
    control = d["control_cell"].to_numpy()
    assert (t[late & ~legal & control] == c.baseline).all()
    for i in np.flatnonzero(late & ~legal & ~control):
        bucket = [b for b in c.buckets if b.min_dpd <= dpd[i]][-1]
        assert t[i] == (bucket.likely if cure[i] >= bucket.cure_threshold else bucket.unlikely)
    strong = np.array([c.severity(x) >= c.severity(c.escalation_from) if x in c.treatments else False for x in t])
    assert d["adverse"].to_numpy()[strong & late].all(), "an escalation is adverse and carries a reason"


@settings(max_examples=200, deadline=None)
@given(accounts())
def test_every_adverse_decision_names_the_rule_that_fired(state):
    d = decide(state, POLICY)
    adverse = d["adverse"].to_numpy()
    cut = d["limit_action"].isin(["decrease", "freeze"]).to_numpy()
    drop = (d["score_adjustment"] < -POLICY.score.adverse_drop).to_numpy() & (state["status"] != CHARGED_OFF).to_numpy()
    assert adverse[cut | drop].all()
    assert (d["rule_code"].to_numpy()[adverse] != "").all()
    assert (d["rule_text"].to_numpy()[adverse] != "").all()
    assert (d["rule_code"].to_numpy()[~adverse] == "").all()
    assert set(d["explain"][adverse]) <= {"default", "self_cure"}
    frozen = (d["limit_action"] == "freeze").to_numpy()
    assert all(text.startswith(f"{int(x)} days past due") for text, x in
               zip(d["rule_text"][frozen & (d["rule_code"] == "P01").to_numpy()], state["dpd_now"][frozen &
                   (d["rule_code"] == "P01").to_numpy()], strict=True))


@settings(max_examples=200, deadline=None)
@given(accounts(), st.integers(1, 60))
def test_damping_bounds_the_move_per_cycle(state, max_move):
    policy = dataclasses.replace(POLICY, score=dataclasses.replace(POLICY.score, max_move=max_move))
    d = decide(state, policy)
    known = state["previous_score"].notna().to_numpy()
    assert (np.abs(d["score_adjustment"].to_numpy()[known]) <= max_move + 1e-9).all()
    assert d["score_adjustment"][~known].isna().all()
    undamped = decide(state, POLICY)
    assert (undamped["score"] == state["model_score"]).all()


def test_early_warning_flags_accounts_above_the_threshold_that_are_not_late_yet():
    state = pd.DataFrame({"account_id": [1, 2, 3, 4], "status": [ACTIVE, ACTIVE, ACTIVE, CHARGED_OFF],
                          "is_installment": False, "pd_default": 0.02, "model_score": 600.0, "previous_score": 600.0,
                          "dpd_now": [0.0, 0.0, 3.0, 0.0], "days_since_late": np.nan, "utilisation": 0.5,
                          "balance_now": 500.0, "limit_now": 1000.0, "p_early_warning": [0.9, 0.1, 0.9, 0.9],
                          "p_self_cure": 0.5})
    d = decide(state, POLICY)
    assert d["early_warning"].tolist() == [True, False, False, False]
    assert d["early_warning_action"].tolist() == [POLICY.early_warning.action, "", "", ""]


def test_without_a_self_cure_model_late_accounts_get_the_unlikely_treatment():
    state = pd.DataFrame({"account_id": [11, 12], "status": ACTIVE, "is_installment": False, "pd_default": 0.02,
                          "model_score": 600.0, "previous_score": np.nan, "dpd_now": [1.0, 20.0],
                          "days_since_late": 1.0, "utilisation": 0.5, "balance_now": 500.0, "limit_now": 1000.0})
    d = decide(state, dataclasses.replace(POLICY, collection=dataclasses.replace(POLICY.collection,
                                                                                 control_share=0.0)))
    assert d["collection_treatment"].tolist() == [POLICY.collection.buckets[0].unlikely,
                                                  POLICY.collection.buckets[2].unlikely]


# ---------------------------------------------------------------------------------------------- control cell


def test_control_cell_is_a_stable_share_independent_of_order_and_chunking():
    ids = np.arange(1, 200_001)
    cell = control_cell(ids, 0.05, "salt-a")
    share = cell.mean()
    assert abs(share - 0.05) < 3 * np.sqrt(0.05 * 0.95 / len(ids))  # binomial: 3 standard errors
    perm = np.random.default_rng(0).permutation(len(ids))
    assert (control_cell(ids[perm], 0.05, "salt-a") == cell[perm]).all()
    assert (np.concatenate([control_cell(ids[:777], 0.05, "salt-a"), control_cell(ids[777:], 0.05, "salt-a")])
            == cell).all()
    other = control_cell(ids, 0.05, "salt-b")
    assert 0 < (other & cell).sum() < 0.2 * cell.sum(), "a new salt draws a new, independent cell"
    assert (control_cell(ids, 0.10, "salt-a") >= cell).all(), "a larger share keeps the accounts already in"
