"""The policy: its config is checked, and every guardrail holds for any account the scorer can hand it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.config import SECTIONS, Band, Bucket, PolicyError, load_policy
from policy.decide import ACTIVE, CHARGED_OFF, CLOSED, INPUTS, NEW, RECOVERY, RULES, control_cell, decide
from policy.engine import Rule, evaluate, inputs
from policy.rules import ALREADY_CLOSED, ESCALATION, LEGAL_REVIEW

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
        "status": col(st.sampled_from([ACTIVE, ACTIVE, ACTIVE, NEW, CHARGED_OFF, CLOSED])),
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
    gone = np.isin(act, ["closed", ALREADY_CLOSED])  # a charged-off or closed account's line
    assert ((new > lim) == up).all() and ((new < lim) == (down | gone & (lim > 0))).all()
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
    closed = (state["status"] == CLOSED).to_numpy()
    assert (act[closed] == ALREADY_CLOSED).all() and (new[closed] == 0).all()
    assert (act[~charged & ~closed & ~revolving] == "none").all()
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
    closed = (state["status"] == CLOSED).to_numpy()
    late = (dpd > 0) & ~charged  # a closed account whose last bill is unpaid is collected too
    assert (t[~late & ~charged] == "").all() and (t[charged] == RECOVERY).all()
    legal = late & (dpd >= c.legal_review_dpd) & (state["balance_now"].to_numpy() >= c.legal_review_balance)
    assert (t[legal] == "legal_review").all()
    control = d["control_cell"].to_numpy()
    assert not control[charged].any(), "a charged-off account is never in the control cell"
    assert not control[closed].any(), "a closed account is never in the control cell"
    assert (t[late & ~legal & control] == c.baseline).all()
    intended, prob = d["collection_intended"].to_numpy(), d["treatment_probability"].to_numpy()
    for i in np.flatnonzero(late & ~legal):
        bucket = [b for b in c.buckets if b.min_dpd <= dpd[i]][-1]
        assert intended[i] == (bucket.likely if cure[i] >= bucket.cure_threshold else bucket.unlikely)
        if not control[i]:
            assert t[i] == intended[i]
    # what an effect measurement needs: the intended treatment, the cell, and the chance of what was given
    assert (intended[legal] == "legal_review").all() and (intended[charged] == RECOVERY).all()
    assert np.isnan(prob[t == ""]).all() and not np.isnan(prob[t != ""]).any()
    drawn = late & ~legal & ~closed & (intended != c.baseline)  # a closed account is never drawn
    assert (prob[drawn & control] == c.control_share).all()
    assert (prob[drawn & ~control] == 1 - c.control_share).all()
    assert (prob[(t != "") & ~drawn] == 1.0).all(), "a treatment given whatever the draw has chance 1"
    strong = np.array([c.severity(x) >= c.severity(c.escalation_from) if x in c.treatments else False for x in t])
    assert d["adverse"].to_numpy()[strong & late].all(), "an escalation is adverse and carries a reason"


@settings(max_examples=200, deadline=None)
@given(accounts())
def test_every_adverse_decision_names_the_rule_that_fired(state):
    d = decide(state, POLICY)
    adverse = d["adverse"].to_numpy()
    cut = d["limit_action"].isin(["decrease", "freeze"]).to_numpy()
    on_book = ~state["status"].isin([CHARGED_OFF, CLOSED]).to_numpy()
    drop = (d["score_adjustment"] < -POLICY.score.adverse_drop).to_numpy() & on_book
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
    state = pd.DataFrame({"account_id": [1, 2, 3, 4, 5], "status": [ACTIVE, ACTIVE, ACTIVE, CHARGED_OFF, CLOSED],
                          "is_installment": False, "pd_default": 0.02, "model_score": 600.0, "previous_score": 600.0,
                          "dpd_now": [0.0, 0.0, 3.0, 0.0, 0.0], "days_since_late": np.nan, "utilisation": 0.5,
                          "balance_now": 500.0, "limit_now": 1000.0, "p_early_warning": [0.9, 0.1, 0.9, 0.9, 0.9],
                          "p_self_cure": 0.5})
    d = decide(state, POLICY)
    assert d["early_warning"].tolist() == [True, False, False, False, False]
    assert d["early_warning_action"].tolist() == [POLICY.early_warning.action, "", "", "", ""]


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


# ---------------------------------------------------------------------------------------------- rules

BASE = {"status": ACTIVE, "is_installment": False, "pd_default": 0.01, "model_score": 550.0, "previous_score": 550.0,
        "dpd_now": 0.0, "days_since_late": np.nan, "utilisation": 0.5, "balance_now": 500.0, "limit_now": 1000.0,
        "p_early_warning": 0.1, "p_self_cure": 0.5}
# one account per situation: what differs from BASE
CASES = {
    "raise": {"model_score": 650.0},
    "late": {"model_score": 650.0, "dpd_now": 5.0},
    "recent": {"model_score": 650.0, "days_since_late": 30.0},
    "unused": {"model_score": 650.0, "utilisation": 0.05, "balance_now": 50.0},
    "cut": {"model_score": 480.0},
    "budget": {"model_score": 400.0, "pd_default": 0.6, "balance_now": 900.0, "utilisation": 0.9},
    "floor": {"model_score": 400.0, "limit_now": 600.0, "balance_now": 100.0},
    "freeze": {"dpd_now": 45.0},
    "legal": {"dpd_now": 90.0, "balance_now": 2500.0, "limit_now": 3000.0, "utilisation": 0.83},
    "new": {"status": NEW},
    "cash": {"is_installment": True},
    "charged": {"status": CHARGED_OFF, "dpd_now": 200.0},
    "closed": {"status": CLOSED, "dpd_now": 2.0, "p_self_cure": np.nan},
    "drop": {"previous_score": 600.0},
    "warning": {"p_early_warning": 0.9},
    "control": {"dpd_now": 1.0, "p_self_cure": 0.1},
}
# where each rule acts on CASES, and the decision it names
FIRES = {
    "P07": set(), "P04": {"drop"},
    "P02": {"raise", "late", "recent", "unused", "cut", "budget", "floor"},
    "P08": {"late"}, "P09": {"recent"}, "P10": {"unused"},
    "P03": {"budget"}, "P11": {"budget", "floor"},
    "P01": {"freeze", "legal"}, "P12": {"new"}, "P13": {"cash"}, "P19": {"closed"},
    "P15": {"warning"},
    "P16": {"late", "freeze", "legal", "control", "closed"}, "P17": {"late", "freeze", "legal"}, "P18": {"control"},
    "P06": {"legal"}, "P05": {"freeze", "legal"},
    "P14": {"charged"},
}
CODES = {"cut": "P02", "budget": "P03", "floor": "P02", "freeze": "P01", "legal": "P06", "drop": "P04"}
ACTIONS = {"raise": "increase", "cut": "decrease", "budget": "decrease", "floor": "decrease", "freeze": "freeze",
           "legal": "freeze", "cash": "none", "charged": "closed", "closed": ALREADY_CLOSED}


def cases() -> pd.DataFrame:
    """The accounts of CASES (the score as last cycle's unless said); only `control` is in the control cell."""
    salt, share = POLICY.collection.control_salt, POLICY.collection.control_share
    ids = np.arange(1, 1000)
    inside, outside = ids[control_cell(ids, share, salt)], ids[~control_cell(ids, share, salt)]
    rows = [{**BASE, "previous_score": change.get("model_score", BASE["model_score"]), **change,
             "account_id": inside[0] if name == "control" else outside[i]}
            for i, (name, change) in enumerate(CASES.items())]
    return pd.DataFrame(rows, index=list(CASES))


def test_every_rule_fires_where_its_situation_holds_and_names_the_decision():
    state = cases()
    d = evaluate(state, POLICY, RULES, score_lo=350, score_hi=950)
    assert set(FIRES) == {r.code for r in RULES}
    for code, names in FIRES.items():
        assert set(state.index[d.fired[code]]) == names, code
    out = decide(state, POLICY)
    assert out["rule_code"].to_dict() == {name: CODES.get(name, "") for name in CASES}
    assert out["limit_action"].to_dict() == {name: ACTIONS.get(name, "keep") for name in CASES}
    assert out.loc["legal", "rule_text"] == "2,500 unpaid and 90 days past due"
    assert out.loc["budget", "rule_text"] == "the line's expected loss of 484 is above the 400 allowed for one account"
    assert out.loc["control", "collection_treatment"] == POLICY.collection.baseline
    damped = dataclasses.replace(POLICY, score=dataclasses.replace(POLICY.score, max_move=10))
    d = evaluate(state.assign(previous_score=[np.nan] + [600.0] * (len(state) - 1)), damped, RULES,
                 score_lo=350, score_hi=950)
    assert set(state.index[d.fired["P07"]]) == set(CASES) - {"raise"}


def test_a_closed_account_keeps_no_line_gets_no_warning_and_its_unpaid_last_bill_is_collected_outside_the_cell():
    salt, share = POLICY.collection.control_salt, POLICY.collection.control_share
    ids = np.arange(1, 1000)
    drawn = ids[control_cell(ids, share, salt)][:2]  # accounts the control cell's hash draws
    state = pd.DataFrame([{**BASE, "account_id": drawn[0], "status": ACTIVE, "dpd_now": 20.0},
                          {**BASE, "account_id": drawn[1], "status": CLOSED, "dpd_now": 20.0, "p_self_cure": np.nan},
                          {**BASE, "account_id": 1000, "status": CLOSED, "dpd_now": 0.0, "p_early_warning": 0.9,
                           "model_score": 650.0}], index=["open late", "closed late", "closed paid"])
    d = decide(state, POLICY)
    assert d["control_cell"].tolist() == [True, False, False], "the cell draws on the book only"
    bucket = [b for b in POLICY.collection.buckets if b.min_dpd <= 20][-1]
    assert d.loc["open late", "collection_treatment"] == POLICY.collection.baseline
    assert d.loc["closed late", "collection_treatment"] == d.loc["closed late", "collection_intended"] \
        == bucket.unlikely != POLICY.collection.baseline
    assert d.loc["closed late", "treatment_probability"] == 1.0, "never drawn, so its treatment is certain"
    closed = d.loc[["closed late", "closed paid"]]
    assert (closed["limit_action"] == ALREADY_CLOSED).all() and (closed["new_credit_limit"] == 0).all()
    assert not closed["early_warning"].any() and d.loc["closed paid", "collection_treatment"] == ""
    assert d.loc["closed paid", "rule_code"] == "", "a line its holder closed is no adverse decision"


def test_the_declared_inputs_are_the_union_of_the_rules_needs_and_the_only_columns_read():
    assert set(INPUTS) == set().union(*(r.needs for r in RULES))
    assert {"pd_default", "p_early_warning", "p_self_cure", "dpd_now", "balance_now"} <= set(INPUTS)
    state = cases()
    decide(state[list(INPUTS)], POLICY)  # nothing else is needed
    with pytest.raises(KeyError, match="utilisation"):
        decide(state.drop(columns=["utilisation"]), POLICY)
    sneaky = Rule("P91", "reads a column it does not declare", stage="limit", needs=("status",),
                  when=lambda d: d.active() & (d.dpd() > 0))
    with pytest.raises(KeyError, match="P91 reads dpd_now but does not declare it"):
        decide(state, POLICY, rules=(*RULES, sneaky))


def test_a_rule_whose_model_output_is_absent_does_not_fire():
    state = cases()
    without = state.drop(columns=["p_self_cure", "p_early_warning"])  # a bundle without those models
    d = evaluate(without, POLICY, RULES, score_lo=350, score_hi=950)
    for code in ("P05", "P15", "P17"):
        assert not d.fired[code].any(), code
    out = decide(without, POLICY)
    late = ["late", "freeze", "legal"]
    buckets = POLICY.collection.buckets
    assert out.loc[late, "collection_treatment"].tolist() == [buckets[1].unlikely, buckets[2].unlikely,
                                                               "legal_review"]
    assert not out["early_warning"].any() and "P05" not in set(out["rule_code"])
    assert (out.loc[out["adverse"], "explain"] == "default").all(), "no self-cure model to explain with"
    with_models = decide(state, POLICY)
    assert with_models.loc["freeze", "collection_treatment"] == buckets[2].likely
    assert with_models["early_warning"].any()


def test_a_model_output_null_outside_its_population_decides_row_by_row():
    """A chunk whose accounts all lie outside the self-cure population (its column all null) decides each
    account as the same account in a mixed chunk does: the decision cannot depend on the chunking."""
    state = cases()
    outside = state["p_self_cure"].where((state["dpd_now"] >= 1) & (state["dpd_now"] <= 29))
    mixed = decide(state.assign(p_self_cure=outside), POLICY)
    alone = state.assign(p_self_cure=outside)[outside.isna()]
    by_itself = decide(alone.assign(p_self_cure=np.nan), POLICY)
    pd.testing.assert_frame_equal(by_itself, mixed.loc[alone.index])
    # an escalation outside the population (30+ DPD) says there is no estimate rather than printing one
    d = evaluate(state.assign(p_self_cure=outside), POLICY, RULES, score_lo=350, score_hi=950)
    rows = d.fired["P05"] & outside.isna().to_numpy()
    texts = d.text(ESCALATION, rows)
    assert rows.any() and all(t.endswith("days past due, no estimate of the chance to pay without contact")
                              for t in texts)


def test_rule_reasons_read_as_sentences_with_their_units_in_words():
    state = cases()
    out = decide(state, POLICY)
    assert out.loc["drop", "rule_text"] == "the credit score fell 50 points since the previous review, to 550"
    assert out.loc["cut", "rule_text"] == "a credit score of 480 is in a band where credit limits are cut"
    assert out.loc["freeze", "rule_text"] == "45 days past due now: the line is frozen until the overdue amount is paid"
    d = evaluate(state, POLICY, RULES, score_lo=350, score_hi=950)
    assert d.text(ESCALATION, (state.index == "control")).tolist() == [
        "1 day past due, estimated 10 % chance to pay without contact"]
    assert d.text(LEGAL_REVIEW, (state.index == "legal")).tolist() == ["2,500 unpaid and 90 days past due"]
    d = evaluate(state.assign(balance_now=1_234_567.0), POLICY, RULES, score_lo=350, score_hi=950)
    assert d.text(LEGAL_REVIEW, (state.index == "legal")).tolist() == ["1,234,567 unpaid and 90 days past due"]


def test_a_new_rule_is_one_object_and_runs_end_to_end():
    young = Rule("P90", "no raise in a line's first months", stage="limit", needs=("months_on_book", "limit_now"),
                 when=lambda d: (d.col("months_on_book") < 6) & (d.action == "increase"),
                 then=lambda d, rows: d.keep(rows, "keep"),
                 reason="line open {months} months: no raise yet", priority=0,
                 fields={"months": lambda d: d.col("months_on_book")})
    rules = (*RULES, young)
    assert set(inputs(rules)) == set(INPUTS) | {"months_on_book"}
    state = cases().assign(months_on_book=3.0)
    with pytest.raises(KeyError, match="months_on_book"):
        decide(state.drop(columns=["months_on_book"]), POLICY, rules=rules)
    out, before = decide(state, POLICY, rules=rules), decide(state, POLICY)
    assert out.loc["raise", ["limit_action", "rule_code", "rule_text", "adverse", "explain"]].tolist() == [
        "keep", "P90", "line open 3 months: no raise yet", True, "default"]
    assert out.loc["raise", "new_credit_limit"] == state.loc["raise", "limit_now"]
    pd.testing.assert_frame_equal(out.drop(index="raise"), before.drop(index="raise"))
    old = state.assign(months_on_book=24.0)
    pd.testing.assert_frame_equal(decide(old, POLICY, rules=rules), decide(old, POLICY))
    with pytest.raises(ValueError, match="distinct"):
        decide(state, POLICY, rules=(*RULES, dataclasses.replace(young, code="P01")))


def test_every_policy_key_declares_what_it_accepts():
    kinds = [*SECTIONS.values(), Band, Bucket]
    for kind in kinds:
        for f in dataclasses.fields(kind):
            assert f.metadata.get("checks"), f"{kind.__name__}.{f.name} declares no check"


@pytest.mark.parametrize(("text", "words"), [
    ("[score]\nadverse_drop = -1\n", ["[score] adverse_drop", "[0, inf]", "-1"]),
    ("[score]\ncycle_months = 0\n", ["[score] cycle_months", ">= 1"]),
    ("[limit]\nccf = 0\n", ["[limit] ccf", "[0.01, 1]"]),
    ("[limit]\ncap = 100.0\n", ["[limit] cap (100.0) must be at least floor (500.0)"]),
    ("[limit]\nbands = [{min_score = 0, step = 11}]\n", ["[limit] bands, row 1: step", "[-1, 10]"]),
    ("[early_warning]\nthreshold = 1.5\n", ["[early_warning] threshold", "[0, 1]"]),
    ("[early_warning]\naction = \"\"\n", ["[early_warning] action must be a non-empty name"]),
    ("[collection]\ncontrol_share = 0.6\n", ["[collection] control_share", "[0, 0.5]"]),
    ("[collection]\ntreatments = [\"call\", \"call\"]\n", ["[collection] treatments", "distinct"]),
    ("[collection]\nbuckets = [{min_dpd = 1, cure_threshold = 2, likely = \"call\", unlikely = \"call\"}]\n",
     ["[collection] buckets, row 1: cure_threshold", "[0, 1]"]),
    ("[collection]\nbuckets = [{min_dpd = 1, cure_threshold = 0.5, likely = \"call\", unlikely = \"call\", x = 1}]\n",
     ["[collection] buckets, row 1:", "unknown key(s) x"]),
])
def test_an_out_of_range_value_is_refused_naming_the_key_and_the_range(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    for w in words:
        assert w in str(err.value)
