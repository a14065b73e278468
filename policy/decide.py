"""Decisions from predictions: published score, limit change, early warning, collection treatment.

One vectorised pass over a chunk of accounts. Each adverse decision -- a limit cut or freeze, a collection
escalation, a score drop beyond the configured step -- names the rule that fired (a P-code and a sentence
with the account's own numbers) and which model's TreeSHAP reasons should follow it: the default model's
for score and limit decisions, the self-cure model's when the only adverse decision is a collection one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.stable_hash import account_uniforms
from policy.config import Policy

# account status: what the policy may do with the account at all
ACTIVE, NEW, CHARGED_OFF = "active", "new", "charged_off"
RECOVERY = "recovery"  # the collection "treatment" of a charged-off account: outside this policy

RULES = {  # code: what fired (texts are filled in with the account's numbers)
    "P01": "days past due now: drawing frozen",
    "P02": "score band cuts limits",
    "P03": "expected loss above the per-account budget",
    "P04": "score fell since the last cycle",
    "P05": "low chance to pay without contact",
    "P06": "long overdue with a large balance: legal review",
}
# the order in which a fired rule becomes the first reason (most serious first)
PRIORITY = ("P06", "P01", "P05", "P03", "P02", "P04")

INPUTS = ("account_id", "status", "is_installment", "pd_default", "model_score", "previous_score", "dpd_now",
          "days_since_late", "utilisation", "balance_now", "limit_now")


def control_cell(account_id: np.ndarray, share: float, salt: str) -> np.ndarray:
    """A stable pseudo-random `share` of accounts: the same account is in or out on every run and machine."""
    return account_uniforms(account_id, salt) < share


def decide(state: pd.DataFrame, policy: Policy, *, score_lo: float = 350, score_hi: float = 950) -> pd.DataFrame:
    """Decisions for every row of `state` (columns INPUTS, plus p_early_warning / p_self_cure when trained).

    Returns, on the same index: score, score_adjustment, early_warning, early_warning_action,
    collection_treatment, control_cell, new_credit_limit, limit_action, adverse, rule_code, rule_text and
    explain (the target whose TreeSHAP reasons follow the rule, '' when nothing is adverse).
    """
    missing = [c for c in INPUTS if c not in state.columns]
    if missing:
        raise KeyError(f"decide() needs the columns {', '.join(missing)}")
    n = len(state)
    status = state["status"].to_numpy()
    active = status == ACTIVE
    charged = status == CHARGED_OFF
    dpd = np.nan_to_num(state["dpd_now"].to_numpy(np.float64), nan=0.0)
    late = (dpd > 0) & ~charged

    score, adjustment = _score(state, policy, score_lo, score_hi)
    drop = np.nan_to_num(-adjustment, nan=0.0) > policy.score.adverse_drop

    new_limit, action, limit_rule, expected_loss = _limit(state, policy, score, dpd, active, charged)
    treatment, control, collect_rule = _collection(state, policy, dpd, late)

    warn = np.zeros(n, dtype=bool)
    if "p_early_warning" in state:
        warn = (state["p_early_warning"].to_numpy(np.float64) >= policy.early_warning.threshold) & ~late & ~charged

    fired = {code: np.zeros(n, dtype=bool) for code in RULES}
    fired["P04"] = drop & ~charged
    for code in ("P01", "P02", "P03"):
        fired[code] = limit_rule == code
    for code in ("P05", "P06"):
        fired[code] = collect_rule == code
    rule = np.full(n, "", dtype=object)
    for code in reversed(PRIORITY):  # the most serious fired rule is written last and wins
        rule[fired[code]] = code
    adverse = rule != ""
    only_collection = adverse & ~fired["P01"] & ~fired["P02"] & ~fired["P03"] & ~fired["P04"]
    explain = np.where(adverse, np.where(only_collection & ("p_self_cure" in state), "self_cure", "default"), "")

    out = pd.DataFrame({
        "score": score, "score_adjustment": adjustment,
        "early_warning": warn,
        "early_warning_action": np.where(warn, policy.early_warning.action, ""),
        "collection_treatment": treatment, "control_cell": control,
        "new_credit_limit": new_limit, "limit_action": action,
        "adverse": adverse, "rule_code": rule, "rule_text": _rule_texts(state, rule, score, expected_loss, policy),
        "explain": explain,
    }, index=state.index)
    return out


def _score(state: pd.DataFrame, policy: Policy, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Published score (damped to max_move per cycle when set) and its change since the previous cycle."""
    model = state["model_score"].to_numpy(np.float64)
    prev = state["previous_score"].to_numpy(np.float64)
    score = model.copy()
    if policy.score.max_move > 0:
        known = ~np.isnan(prev)
        move = np.clip(model - prev, -policy.score.max_move, policy.score.max_move)
        score[known] = np.clip(prev[known] + move[known], lo, hi)
    return score, score - prev


def _limit(state: pd.DataFrame, policy: Policy, score: np.ndarray, dpd: np.ndarray, active: np.ndarray,
           charged: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """New limit, action, the rule behind an adverse action and the expected loss at the current limit."""
    p = policy.limit
    lim = state["limit_now"].to_numpy(np.float64)
    bal = np.maximum(np.nan_to_num(state["balance_now"].to_numpy(np.float64)), 0.0)
    pd_ = state["pd_default"].to_numpy(np.float64)
    since_late = state["days_since_late"].to_numpy(np.float64)
    util = np.nan_to_num(state["utilisation"].to_numpy(np.float64))
    revolving = ~state["is_installment"].to_numpy(bool)

    mins = np.array([b.min_score for b in p.bands])[::-1]  # ascending for searchsorted
    steps = np.array([b.step for b in p.bands])[::-1]
    step = steps[np.clip(np.searchsorted(mins, score, side="right") - 1, 0, len(mins) - 1)]
    recent_late = since_late <= p.no_increase_days_after_late  # NaN (never late) compares False
    blocked = (dpd > 0) | recent_late | (util < p.increase_min_utilisation)
    step = np.clip(np.where((step > 0) & blocked, 0.0, step), -p.max_decrease, p.max_increase)
    target = lim * (1.0 + step)

    loss_rate = pd_ * p.lgd
    with np.errstate(divide="ignore", invalid="ignore"):
        el = loss_rate * (bal + p.ccf * np.maximum(lim - bal, 0.0))
        budget_limit = np.where(loss_rate > 0, bal + (p.el_budget / loss_rate - bal) / p.ccf, np.inf)
    over_budget = el > p.el_budget
    target = np.where(target > lim, np.minimum(target, np.maximum(budget_limit, lim)), target)
    target = np.where(over_budget, np.minimum(target, budget_limit), target)
    target = np.clip(target, lim * (1 - p.max_decrease), lim * (1 + p.max_increase))
    lowest = np.minimum(lim, np.maximum(p.floor, np.ceil(bal / p.round_to) * p.round_to))  # never below the balance
    target = np.minimum(np.maximum(target, lowest), np.maximum(lim, p.cap))
    rounded = np.where(target > lim, np.floor(target / p.round_to) * p.round_to,
                       np.minimum(np.ceil(target / p.round_to) * p.round_to, lim))
    new = np.where(target > lim, np.maximum(rounded, lim), np.where(target < lim, rounded, lim))

    action = np.where(new > lim, "increase", np.where(new < lim, "decrease", "keep")).astype(object)
    rule = np.where(action == "decrease", np.where(over_budget & (budget_limit < lim * (1 + step)), "P03", "P02"),
                    "").astype(object)
    freeze = active & revolving & (dpd >= p.freeze_dpd)
    hold = ~active | ~revolving | freeze
    new = np.where(hold, lim, new)
    action[hold] = "keep"
    rule[hold] = ""
    action[freeze] = "freeze"
    rule[freeze] = "P01"
    action[~revolving & ~charged] = "none"  # a cash loan has no line to move
    action[charged] = "closed"
    new = np.where(charged, 0.0, new)
    return new, action, rule, el


def _collection(state: pd.DataFrame, policy: Policy, dpd: np.ndarray, late: np.ndarray):
    """Treatment for accounts late now (control cell gets the baseline) and the rule of an escalation."""
    c = policy.collection
    n = len(state)
    control = control_cell(state["account_id"].to_numpy(np.int64), c.control_share, c.control_salt)
    starts = np.array([b.min_dpd for b in c.buckets])
    bucket = np.clip(np.searchsorted(starts, dpd, side="right") - 1, 0, len(starts) - 1)
    threshold = np.array([b.cure_threshold for b in c.buckets])[bucket]
    cure = state["p_self_cure"].to_numpy(np.float64) if "p_self_cure" in state else np.zeros(n)  # no model: unlikely
    likely = np.array([b.likely for b in c.buckets], dtype=object)[bucket]
    unlikely = np.array([b.unlikely for b in c.buckets], dtype=object)[bucket]
    treatment = np.where(cure >= threshold, likely, unlikely)
    bal = np.nan_to_num(state["balance_now"].to_numpy(np.float64))
    legal = late & (dpd >= c.legal_review_dpd) & (bal >= c.legal_review_balance)
    treatment = np.where(legal, "legal_review", np.where(control, c.baseline, treatment))
    treatment = np.where(late, treatment, "").astype(object)
    treatment[state["status"].to_numpy() == CHARGED_OFF] = RECOVERY
    severity = {t: i + 1 for i, t in enumerate(c.treatments)}
    level = pd.Series(treatment).map(severity).fillna(0).to_numpy()
    escalated = late & (level >= severity[c.escalation_from])
    rule = np.where(legal, "P06", np.where(escalated, "P05", "")).astype(object)
    return treatment, control, rule


def _rule_texts(state: pd.DataFrame, rule: np.ndarray, score: np.ndarray, expected_loss: np.ndarray,
                policy: Policy) -> np.ndarray:
    """The fired rule in a sentence with the account's own numbers (built per rule, not per row)."""
    text = np.full(len(rule), "", dtype=object)

    def num(values: np.ndarray, mask: np.ndarray, digits: int = 0) -> pd.Series:
        v = pd.Series(np.round(values[mask], digits))
        return v.astype("int64").astype(str) if digits == 0 else v.map(f"{{:.{digits}f}}".format)

    dpd = np.nan_to_num(state["dpd_now"].to_numpy(np.float64))
    bal = np.nan_to_num(state["balance_now"].to_numpy(np.float64))
    prev = state["previous_score"].to_numpy(np.float64)
    for code in RULES:
        m = rule == code
        if not m.any():
            continue
        if code == "P01":
            s = num(dpd, m) + " days past due now: drawing frozen until paid"
        elif code == "P02":
            s = "score " + num(score, m) + " is in a band that cuts credit limits"
        elif code == "P03":
            s = "expected loss " + num(expected_loss, m) + f" is above the budget of {policy.limit.el_budget:.0f}"
        elif code == "P04":
            s = "score fell " + num(prev - score, m) + " points since the last cycle, to " + num(score, m)
        elif code == "P05":
            s = num(dpd, m) + _cure_phrase(state, m)
        else:
            s = num(bal, m) + " unpaid at " + num(dpd, m) + " days past due"
        text[m] = s.to_numpy(dtype=object)
    return text


def _cure_phrase(state: pd.DataFrame, mask: np.ndarray) -> pd.Series:
    """The self-cure estimate in words, or that there is none (no model, or outside its 1-29 DPD population)."""
    cure = state["p_self_cure"].to_numpy(np.float64)[mask] * 100 if "p_self_cure" in state else \
        np.full(int(mask.sum()), np.nan)
    known = ~np.isnan(cure)
    pct = pd.Series(np.round(np.where(known, cure, 0.0))).astype("int64").astype(str)
    return pd.Series(np.where(known, " days past due, estimated " + pct + " % chance to pay without contact",
                              " days past due, no estimate of the chance to pay without contact"))
