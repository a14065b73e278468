"""The policy's rules, one object each; their thresholds and steps are keys of policy/default.toml.

A new rule is one more `Rule` in RULES (in the stage where it acts; within a stage, rules act in the order
listed) plus its keys: a field in policy/config.py with what it accepts, and a documented line of
default.toml. Its `needs` join INPUTS, the columns the scoring job supplies.

Codes P01-P06 are the reasons an adverse decision can carry; the other rules never make a decision adverse,
their codes only name them (in tests, in `Decision.fired`). A reason is a sentence a customer service agent
can read out: whole numbers with their unit in words ("1 day", "35 days"), amounts with thousands separators.
"""
from __future__ import annotations

import numpy as np

from policy.config import LimitPolicy
from policy.engine import RECOVERY, Decision, Rule, inputs


def _counted(one: str, many: str, of):
    """A reason field: `of(d)` in whole numbers with its unit in words, as people say it ("1 day", "35 days",
    "1,204 points"); worded once per distinct value."""
    def field(d: Decision) -> np.ndarray:
        values = np.round(np.asarray(of(d), dtype=np.float64))
        distinct, back = np.unique(values, return_inverse=True)
        words = np.array(["" if np.isnan(v) else f"{v:,.0f} {one if v == 1 else many}" for v in distinct],
                         dtype=object)
        return words[back.reshape(-1)]
    return field


DAYS_PAST_DUE = {"days": _counted("day", "days", Decision.dpd)}

# ---------------------------------------------------------------------------------------------- score


def _damped(d: Decision, rows: np.ndarray) -> None:
    model, prev, most = d.col("model_score"), d.col("previous_score"), d.policy.score.max_move
    move = np.clip(model - prev, -most, most)
    d.score[rows] = np.clip(prev[rows] + move[rows], d.score_lo, d.score_hi)


DAMPING = Rule(
    "P07", "a score moves at most max_move points per cycle", stage="score", needs=("model_score", "previous_score"),
    when=lambda d: ~np.isnan(d.col("previous_score")) & (d.policy.score.max_move > 0),
    then=_damped)

SCORE_DROP = Rule(
    "P04", "score fell since the last cycle", stage="score", needs=("previous_score", "status"),
    when=lambda d: (np.nan_to_num(-(d.score - d.col("previous_score")), nan=0.0) > d.policy.score.adverse_drop)
    & d.on_book(),
    reason="the credit score fell {drop} since the previous review, to {score}", priority=6,
    fields={"drop": _counted("point", "points", lambda d: d.col("previous_score") - d.score)})

# ---------------------------------------------------------------------------------------------- limit step


def _band_step(d: Decision) -> np.ndarray:
    """The step of the first band the published score reaches, within the steps' bounds."""
    p = d.policy.limit
    mins = np.array([b.min_score for b in p.bands])[::-1]  # ascending for searchsorted
    steps = np.array([b.step for b in p.bands])[::-1]
    step = steps[np.clip(np.searchsorted(mins, d.score, side="right") - 1, 0, len(mins) - 1)]
    return np.clip(step, -p.max_decrease, p.max_increase)


def _set_step(d: Decision, rows: np.ndarray) -> None:
    d.step[rows] = _band_step(d)[rows]


def _no_raise(d: Decision, rows: np.ndarray) -> None:
    d.step[rows] = 0.0


BAND = Rule(
    "P02", "score band cuts limits", stage="step", needs=("model_score",),
    when=lambda d: _band_step(d) != 0, then=_set_step,
    blame=lambda d: (d.action == "decrease") & ~d.budget_cut,  # a cut the budget did not make
    reason="a credit score of {score} is in a band where credit limits are cut", priority=5)

NO_RAISE_LATE = Rule(
    "P08", "no raise while late", stage="step", needs=("dpd_now",),
    when=lambda d: (d.step > 0) & (d.dpd() > 0), then=_no_raise)

NO_RAISE_RECENTLY_LATE = Rule(
    "P09", "no raise soon after a late bill", stage="step", needs=("days_since_late",),
    # never late is NaN, and NaN compares False
    when=lambda d: (d.step > 0) & (d.col("days_since_late") <= d.policy.limit.no_increase_days_after_late),
    then=_no_raise)

NO_RAISE_UNUSED = Rule(
    "P10", "no raise for a line not in use", stage="step", needs=("utilisation",),
    when=lambda d: (d.step > 0) & (np.nan_to_num(d.col("utilisation")) < d.policy.limit.increase_min_utilisation),
    then=_no_raise)

# ---------------------------------------------------------------------------------------------- target limit


def expected_loss(pd_default: np.ndarray, balance: np.ndarray, limit: np.ndarray, p: LimitPolicy) -> np.ndarray:
    """PD x LGD x EAD at `limit`, EAD = drawn balance + CCF x undrawn; a credit balance counts as nothing drawn.

    The budget rule reads it at the current limit; the scoring run's totals at the current and the new limit.
    """
    drawn = np.maximum(np.nan_to_num(balance), 0.0)
    return pd_default * p.lgd * (drawn + p.ccf * np.maximum(limit - drawn, 0.0))


def _expected_loss(d: Decision) -> np.ndarray:
    """At the current limit."""
    return expected_loss(d.col("pd_default"), d.balance(), d.limit(), d.policy.limit)


def _budget_limit(d: Decision) -> np.ndarray:
    """The limit whose expected loss is exactly the budget (no bound without a loss rate)."""
    p, bal = d.policy.limit, d.drawn()
    rate = d.col("pd_default") * p.lgd
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rate > 0, bal + (p.el_budget / rate - bal) / p.ccf, np.inf)


def _over_budget(d: Decision) -> np.ndarray:
    return _expected_loss(d) > d.policy.limit.el_budget


def _budget_binds(d: Decision) -> np.ndarray:
    lim, target, budget = d.limit(), d.target, _budget_limit(d)
    return ((target > lim) & (target > np.maximum(budget, lim))) | (_over_budget(d) & (target > budget))


def _hold_to_budget(d: Decision, rows: np.ndarray) -> None:
    """A raise stops at the budget; a limit whose expected loss is above it is cut toward it."""
    lim, target, budget, over = d.limit()[rows], d.target[rows], _budget_limit(d)[rows], _over_budget(d)[rows]
    d.budget_cut[rows] = over & (budget < target)
    target = np.where(target > lim, np.minimum(target, np.maximum(budget, lim)), target)
    d.target[rows] = np.where(over, np.minimum(target, budget), target)


def _bounded(d: Decision) -> np.ndarray:
    """The target within the steps' bounds, the floor (never below the balance) and the cap."""
    p, lim, bal = d.policy.limit, d.limit(), d.drawn()
    target = np.clip(d.target, lim * (1 - p.max_decrease), lim * (1 + p.max_increase))
    lowest = np.minimum(lim, np.maximum(p.floor, np.ceil(bal / p.round_to) * p.round_to))
    return np.minimum(np.maximum(target, lowest), np.maximum(lim, p.cap))


def _bound(d: Decision, rows: np.ndarray) -> None:
    d.target[rows] = _bounded(d)[rows]


BUDGET = Rule(
    "P03", "expected loss above the per-account budget", stage="target",
    needs=("pd_default", "balance_now", "limit_now"), when=_budget_binds, then=_hold_to_budget,
    blame=lambda d: (d.action == "decrease") & d.budget_cut,
    reason="the line's expected loss of {expected_loss:,.0f} is above the {limit.el_budget:,.0f} allowed for one "
    "account", priority=4,
    fields={"expected_loss": _expected_loss})

BOUNDS = Rule(
    "P11", "steps, floor and cap bound the new limit; never below the balance", stage="target",
    needs=("balance_now", "limit_now"), when=lambda d: _bounded(d) != d.target, then=_bound)

# ---------------------------------------------------------------------------------------------- new limit

FREEZE = Rule(
    "P01", "days past due now: drawing frozen", stage="limit",
    needs=("status", "is_installment", "dpd_now", "limit_now"),
    when=lambda d: d.active() & d.revolving() & (d.dpd() >= d.policy.limit.freeze_dpd),
    then=lambda d, rows: d.keep(rows, "freeze"),
    reason="{days} past due now: the line is frozen until the overdue amount is paid", priority=2,
    fields=DAYS_PAST_DUE)

NOT_ACTIVE_YET = Rule(
    "P12", "a line with no bill due yet keeps its limit", stage="limit",
    needs=("status", "is_installment", "limit_now"),
    when=lambda d: ~d.active() & d.on_book() & d.revolving(), then=lambda d, rows: d.keep(rows, "keep"))

CASH_LOAN = Rule(
    "P13", "a cash loan has no line to move", stage="limit", needs=("status", "is_installment", "limit_now"),
    when=lambda d: ~d.revolving() & d.on_book(), then=lambda d, rows: d.keep(rows, "none"))


# the limit action of a line its holder closed, or of a loan repaid at maturity: the line is gone, and not by this
# policy's doing (a charged-off line is "closed" by the lender, rule P14)
ALREADY_CLOSED = "already_closed"


def _gone(d: Decision, rows: np.ndarray) -> None:
    d.new_limit[rows] = 0.0
    d.action[rows] = ALREADY_CLOSED


# off the book (Decision.on_book), so no score drop, early warning or control cell either; but its last bill,
# if still unpaid, is collected like any other (Decision.late)
CLOSED_ACCOUNT = Rule(
    "P19", "closed by its holder or repaid: no line left to move; an unpaid last bill is still collected",
    stage="limit", needs=("status",), when=lambda d: d.closed(), then=_gone)

# ---------------------------------------------------------------------------------------------- early warning


def _warn(d: Decision, rows: np.ndarray) -> None:
    d.warn[rows] = True


EARLY_WARNING = Rule(
    "P15", "likely to pay the next bill late: reminder before the due date", stage="warning",
    needs=("p_early_warning", "dpd_now", "status"),
    when=lambda d: (d.col("p_early_warning") >= d.policy.early_warning.threshold) & ~d.late() & d.on_book(),
    then=_warn)

# ---------------------------------------------------------------------------------------------- collection


def _bucket(d: Decision, key: str) -> np.ndarray:
    """Each account's value of `key` in its days-past-due bucket (the last one whose min_dpd it reaches)."""
    buckets = d.policy.collection.buckets
    starts = np.array([b.min_dpd for b in buckets])
    index = np.clip(np.searchsorted(starts, d.dpd(), side="right") - 1, 0, len(starts) - 1)
    return np.array([getattr(b, key) for b in buckets], dtype=None if key == "cure_threshold" else object)[index]


def _treat(key: str):
    """An action that gives the rows their bucket's treatment `key`."""
    def then(d: Decision, rows: np.ndarray) -> None:
        d.treat(rows, _bucket(d, key)[rows])
    return then


def _give(name_of, intended: bool = True):
    """An action that gives the rows one treatment, named by the policy (`intended`: see Decision.treat)."""
    def then(d: Decision, rows: np.ndarray) -> None:
        d.treat(rows, name_of(d.policy.collection), intended=intended)
    return then


def _cure_estimate(p_self_cure: np.ndarray) -> np.ndarray:
    """The self-cure estimate in words; none outside the model's population (30+ DPD: it does not speak there)."""
    known = ~np.isnan(p_self_cure)
    pct = np.round(np.where(known, p_self_cure, 0.0) * 100).astype(np.int64).astype(str)
    return np.where(known, np.char.add(np.char.add("estimated ", pct), " % chance to pay without contact"),
                    "no estimate of the chance to pay without contact").astype(object)


def _escalated(d: Decision) -> np.ndarray:
    c = d.policy.collection
    strong = list(c.treatments[c.treatments.index(c.escalation_from):])
    return d.late() & np.isin(d.treatment, strong)


BY_BUCKET = Rule(
    "P16", "late: the bucket's treatment for those unlikely to pay without contact", stage="collection",
    needs=("dpd_now", "status"), when=lambda d: d.late(), then=_treat("unlikely"))

LIKELY_SELF_CURE = Rule(
    "P17", "late but likely to pay without contact: the bucket's milder treatment", stage="collection",
    needs=("p_self_cure", "dpd_now", "status"),
    when=lambda d: d.late() & (d.col("p_self_cure") >= _bucket(d, "cure_threshold")), then=_treat("likely"))

CONTROL = Rule(
    "P18", "control cell: the baseline treatment", stage="collection", needs=("account_id", "dpd_now", "status"),
    when=lambda d: d.late() & d.control, then=_give(lambda c: c.baseline, intended=False), randomises=True)

LEGAL_REVIEW = Rule(
    "P06", "long overdue with a large balance: legal review", stage="collection",
    needs=("dpd_now", "status", "balance_now"),
    when=lambda d: d.late() & (d.dpd() >= d.policy.collection.legal_review_dpd)
    & (d.balance() >= d.policy.collection.legal_review_balance),
    then=_give(lambda c: "legal_review"),  # never randomised: it comes after the control cell
    reason="{balance:,.0f} unpaid and {days} past due", priority=1, explain="self_cure", fields=DAYS_PAST_DUE)

ESCALATION = Rule(
    "P05", "low chance to pay without contact", stage="collection", needs=("p_self_cure", "dpd_now", "status"),
    when=_escalated,
    reason="{days} past due, {self_cure_estimate}", priority=3, explain="self_cure",
    fields={**DAYS_PAST_DUE, "self_cure_estimate": lambda d: _cure_estimate(d.col("p_self_cure"))})

# ---------------------------------------------------------------------------------------------- final


def _close(d: Decision, rows: np.ndarray) -> None:
    d.new_limit[rows] = 0.0
    d.action[rows] = "closed"
    d.treat(rows, RECOVERY)


CHARGED_OFF = Rule(
    "P14", "charged off: the line is closed, the debt in recovery", stage="final", needs=("status",),
    when=lambda d: d.charged(), then=_close)

RULES = (DAMPING, SCORE_DROP, BAND, NO_RAISE_LATE, NO_RAISE_RECENTLY_LATE, NO_RAISE_UNUSED, BUDGET, BOUNDS, FREEZE,
         NOT_ACTIVE_YET, CASH_LOAN, CLOSED_ACCOUNT, EARLY_WARNING, BY_BUCKET, LIKELY_SELF_CURE, CONTROL, LEGAL_REVIEW,
         ESCALATION, CHARGED_OFF)
INPUTS = inputs(RULES)

