"""Decisions from predictions: published score, limit change, early warning, collection treatment.

One vectorised pass of the rules (policy/rules.py) over a chunk of accounts. Each adverse decision -- a
limit cut or freeze, a collection escalation, a score drop beyond the configured step -- names the rule
that fired (a P-code and a sentence with the account's own numbers) and which model's TreeSHAP reasons
should follow it: the default model's for score and limit decisions, the self-cure model's when the only
adverse decision is a collection one.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from policy.config import Policy
from policy.engine import ACTIVE, CHARGED_OFF, CLOSED, NEW, RECOVERY, Decision, Rule, control_cell, evaluate
from policy.rules import INPUTS, RULES

__all__ = ["ACTIVE", "CHARGED_OFF", "CLOSED", "INPUTS", "NEW", "RECOVERY", "RULES", "control_cell", "decide"]


def decide(state: pd.DataFrame, policy: Policy, *, score_lo: float = 350, score_hi: float = 950,
           rules: Iterable[Rule] = RULES, fired: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Decisions for every row of `state` (columns INPUTS; p_early_warning / p_self_cure only when trained).

    fired: a dict to fill with where each rule fired (rule code: boolean mask over the rows), for counts.

    Returns, on the same index: score, score_adjustment, early_warning, early_warning_action,
    collection_treatment, collection_intended, control_cell, treatment_probability, new_credit_limit,
    limit_action, adverse, rule_code, rule_text and explain (the target whose TreeSHAP reasons follow the rule,
    '' when nothing is adverse).
    """
    rules = tuple(rules)
    d = evaluate(state, policy, rules, score_lo=score_lo, score_hi=score_hi)
    code, text, explain = _reasons(d, [r for r in rules if r.reason])
    if fired is not None:
        fired.update(d.fired)
    return pd.DataFrame({
        "score": d.score, "score_adjustment": d.score - d.col("previous_score"),
        "early_warning": d.warn,
        "early_warning_action": np.where(d.warn, policy.early_warning.action, ""),
        "collection_treatment": d.treatment, "collection_intended": d.intended, "control_cell": d.control,
        "treatment_probability": treatment_probability(d),
        "new_credit_limit": d.new_limit, "limit_action": d.action,
        "adverse": code != "", "rule_code": code, "rule_text": text,
        "explain": explain,
    }, index=state.index)


def treatment_probability(d: Decision) -> np.ndarray:
    """The chance that each treated account got the treatment it got, given its state: what weighting a
    later measurement of treatment effects needs. The control cell is a stable hash drawn with chance
    `control_share`: its late accounts get the baseline, the others what the policy intends. A treatment given
    whatever the draw (legal review, recovery, an intended treatment that is the baseline anyway, or any
    treatment of an account the cell never draws) has chance 1. Null where there is no treatment."""
    c = d.policy.collection
    share = np.where(d.control, c.control_share, 1.0 - c.control_share)
    certain = d.fixed | (d.intended == c.baseline) | ~d.drawable()
    return np.where(d.treatment == "", np.nan, np.where(certain, 1.0, share))


def _reasons(d: Decision, adverse_rules: list[Rule]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each account's most serious adverse rule, its sentence, and the model whose reasons follow it.

    The default model explains whenever a rule it explains fired; another model only when every adverse
    rule of the account is its own and the model is there.
    """
    ranked = sorted(adverse_rules, key=lambda r: r.priority)
    blamed = {r.code: d.adverse(r) for r in ranked}
    code = np.full(d.n, "", dtype=object)
    for r in reversed(ranked):  # the most serious fired rule is written last and wins
        code[blamed[r.code]] = r.code
    adverse = code != ""
    explain = np.where(adverse, "default", "")
    for target in sorted({r.explain for r in ranked} - {"default"}):
        if d.has_model(target):
            others = np.zeros(d.n, dtype=bool)
            for r in ranked:
                if r.explain != target:
                    others |= blamed[r.code]
            explain = np.where(adverse & ~others, target, explain)
    text = np.full(d.n, "", dtype=object)
    for r in ranked:
        rows = code == r.code
        if rows.any():
            text[rows] = d.text(r, rows)
    return code, text, explain
