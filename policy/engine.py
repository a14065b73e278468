"""How policy rules are declared and applied: a rule is one object, the engine runs them stage by stage.

A `Rule` says where it acts (a vectorised predicate over the chunk), what it does there, the input columns
it reads, and -- when its decision is adverse -- its reason: a code, a rank among reasons and a sentence
template filled in with the account's own numbers. `evaluate` opens each stage of a decision (the score,
the limit step, the target limit, the new limit, the early warning, the collection treatment, a final
pass), applies that stage's rules in their listed order, and records where each one fired.

Rules read inputs only through `Decision.col` and the helpers built on it, which refuse a column the
running rule did not declare: the declared inputs are the columns the policy really reads. A rule that
needs a model's output that is absent (the bundle has no such model: the column is left out) does not
fire, rather than reading the gap as 0.
"""
from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.stable_hash import account_uniforms
from policy.config import Policy

# account status: what the policy may do with the account at all
ACTIVE, NEW, CHARGED_OFF = "active", "new", "charged_off"
CLOSED = "closed"  # closed by its holder, or a cash loan repaid at maturity (accounts.close_date)
RECOVERY = "recovery"  # the collection "treatment" of a charged-off account: outside this policy

STAGES = ("score", "step", "target", "limit", "warning", "collection", "final")
# what opening a stage reads (the rest is read by the rules): see Decision.open
OPENS = {"score": ("model_score", "previous_score"), "target": ("limit_now",), "limit": ("limit_now",),
         "collection": ("account_id", "status")}
# columns a model writes; a bundle without the early-warning or self-cure model leaves its column out
OPTIONAL = ("p_early_warning", "p_self_cure")
MODEL_OUTPUTS = ("pd_default", "model_score", *OPTIONAL)
# the model whose reasons explain an adverse rule, and the column that says the model is there
EXPLAINED_BY = {"default": "pd_default", "self_cure": "p_self_cure", "early_warning": "p_early_warning"}
_DTYPES = {"account_id": np.int64, "status": None, "is_installment": bool}  # the others are float64


def _nothing(d: Decision, rows: np.ndarray) -> None:
    """The action of a rule that only gives a reason (the decision itself was taken by other rules)."""


@dataclass(frozen=True)
class Rule:
    """One rule of the policy.

    `when(d)` is the boolean mask of the accounts it acts on, `then(d, rows)` acts on them. A rule with a
    `reason` is adverse where it fires -- or, with `blame`, where the finished decision turned out to be
    its doing (a band's step is a cut only if the limit really went down) -- and the most serious such rule
    (lowest `priority`) names the account's decision. `explain` names the model whose reasons follow it.
    The reason's placeholders are the rule's own `fields` (arrays over the chunk), the common ones
    (FIELDS) and policy keys such as {limit.el_budget:.0f}.
    """
    code: str
    title: str
    stage: str
    needs: tuple[str, ...]
    when: Callable[[Decision], np.ndarray]
    then: Callable[[Decision, np.ndarray], None] = _nothing
    reason: str = ""
    priority: int | None = None
    blame: Callable[[Decision], np.ndarray] | None = None
    explain: str = "default"
    # the control cell's rule: its treatment is drawn, not intended; a treatment given by a later rule is given
    # whatever the draw (legal review, recovery)
    randomises: bool = False
    fields: Mapping[str, Callable[[Decision], np.ndarray]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"rule {self.code}: stage {self.stage!r} is not one of {', '.join(STAGES)}")
        if self.reason and self.priority is None:
            raise ValueError(f"rule {self.code}: a rule with a reason needs a priority among the reasons")
        if self.explain not in EXPLAINED_BY:
            raise ValueError(f"rule {self.code}: explain {self.explain!r} is not one of {', '.join(EXPLAINED_BY)}")


def inputs(rules: Iterable[Rule]) -> tuple[str, ...]:
    """Every column the rules (and the stages they run in) read: what a caller must supply."""
    return tuple(sorted({c for r in rules for c in r.needs} | {c for cols in OPENS.values() for c in cols}))


def control_cell(account_id: np.ndarray, share: float, salt: str) -> np.ndarray:
    """A stable pseudo-random `share` of accounts: the same account is in or out on every run and machine."""
    return account_uniforms(account_id, salt) < share


class Decision:
    """One chunk's decisions in the making: the inputs, what the rules decided so far, where each fired."""

    def __init__(self, state: pd.DataFrame, policy: Policy, needs: Iterable[str], score_lo: float,
                 score_hi: float) -> None:
        missing = [c for c in needs if c not in state.columns and c not in OPTIONAL]
        if missing:
            raise KeyError(f"decide() needs the columns {', '.join(missing)}")
        self.state, self.policy, self.n = state, policy, len(state)
        self.score_lo, self.score_hi = score_lo, score_hi
        # absent: the bundle has no such model, so the caller leaves the column out. A column that is there
        # but null in every row of this chunk (no account in the model's population) is not absent: a
        # decision must not depend on which accounts happen to share a chunk
        self.absent = frozenset(c for c in MODEL_OUTPUTS if c not in state)
        self.fired: dict[str, np.ndarray] = {}  # rule code: the accounts it acted on
        # what the rules decide, each opened by its stage (see open)
        self.score = self.step = self.target = self.new_limit = np.empty(0)
        # treatment: what the account gets; intended: what the policy would give it outside the control cell
        self.action = self.treatment = self.intended = np.empty(0, dtype=object)
        self.warn = self.control = self.fixed = np.empty(0, dtype=bool)  # fixed: treated whatever the draw
        self._drawn = False  # the control cell's rule has run
        self.budget_cut = np.zeros(self.n, dtype=bool)  # limit cuts that the expected-loss budget made
        self._reader: tuple[str, frozenset[str]] | None = None
        self._cache: dict[str, np.ndarray] = {}  # never written to by rules

    # ------------------------------------------------------------------ inputs (each read is declared)

    def col(self, name: str) -> np.ndarray:
        """An input column as an array (all NaN for an optional model output the state leaves out)."""
        return self._derived(name, (name,), lambda: self.state[name].to_numpy(_DTYPES.get(name, np.float64))
                             if name in self.state else np.full(self.n, np.nan))

    def _derived(self, key: str, cols: tuple[str, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
        """An array computed once per chunk from input columns that the running rule must have declared."""
        if self._reader is not None and not self._reader[1].issuperset(cols):
            raise KeyError(f"{self._reader[0]} reads {', '.join(cols)} but does not declare it in its needs")
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def dpd(self) -> np.ndarray:
        return self._derived("dpd", ("dpd_now",), lambda: np.nan_to_num(self.col("dpd_now"), nan=0.0))

    def balance(self) -> np.ndarray:
        return self._derived("balance", ("balance_now",), lambda: np.nan_to_num(self.col("balance_now")))

    def drawn(self) -> np.ndarray:
        """The balance the limit must cover (a credit balance counts as nothing drawn)."""
        return self._derived("drawn", ("balance_now",), lambda: np.maximum(self.balance(), 0.0))

    def limit(self) -> np.ndarray:
        return self.col("limit_now")

    def charged(self) -> np.ndarray:
        return self._derived("charged", ("status",), lambda: self.col("status") == CHARGED_OFF)

    def closed(self) -> np.ndarray:
        return self._derived("closed", ("status",), lambda: self.col("status") == CLOSED)

    def on_book(self) -> np.ndarray:
        """Neither charged off nor closed: the accounts this policy scores, warns and moves limits for."""
        return self._derived("on_book", ("status",), lambda: ~self.charged() & ~self.closed())

    def active(self) -> np.ndarray:
        return self._derived("active", ("status",), lambda: self.col("status") == ACTIVE)

    def revolving(self) -> np.ndarray:
        return self._derived("revolving", ("is_installment",), lambda: ~self.col("is_installment"))

    def late(self) -> np.ndarray:
        """Late now, and still this policy's to treat: a charged-off account is in recovery, but a closed one
        whose last bill is unpaid is collected like any other."""
        return self._derived("late", ("dpd_now", "status"), lambda: (self.dpd() > 0) & ~self.charged())

    def drawable(self) -> np.ndarray:
        """The accounts the control cell may draw: those on the book. A charged-off debt is in recovery,
        outside this policy, so it can measure nothing; a closed account has no line left and its last bill
        is collected as intended, not held back to measure the book's treatments."""
        return self.on_book()

    def randomised(self) -> np.ndarray:
        """The collection control cell: a stable share of the drawable accounts."""
        c = self.policy.collection
        return control_cell(self.col("account_id"), c.control_share, c.control_salt) & self.drawable()

    def treat(self, rows: np.ndarray, treatment, *, intended: bool = True) -> None:
        """Give `rows` a treatment; `intended` also records it as what the policy intends for them (the control
        cell's baseline is not: it is the experiment's, not the policy's)."""
        self.treatment[rows] = treatment
        if intended:
            self.intended[rows] = treatment
            self.fixed[rows] |= self._drawn

    def keep(self, rows: np.ndarray, action: str) -> None:
        """The limit stays as it is on `rows`, under the name `action`."""
        self.new_limit[rows] = self.limit()[rows]
        self.action[rows] = action

    # ------------------------------------------------------------------ stages and rules

    @contextmanager
    def reading(self, who: str, needs: Iterable[str]):
        self._reader = (who, frozenset(needs))
        try:
            yield
        finally:
            self._reader = None

    def open(self, stage: str) -> None:
        """What a stage starts from before its rules act: the model's score, no step, the stepped limit ..."""
        with self.reading(f"stage {stage}", OPENS.get(stage, ())):
            if stage == "score":
                self.score = self.col("model_score").copy()
            elif stage == "step":
                self.step = np.zeros(self.n)
            elif stage == "target":
                self.target = self.limit() * (1.0 + self.step)
            elif stage == "limit":
                self._round()
            elif stage == "warning":
                self.warn = np.zeros(self.n, dtype=bool)
            elif stage == "collection":
                self.control = self.randomised()
                self.treatment = np.full(self.n, "", dtype=object)
                self.intended = np.full(self.n, "", dtype=object)
                self.fixed = np.zeros(self.n, dtype=bool)

    def _round(self) -> None:
        """New limit and action from the target: multiples of round_to, rounded toward the current limit."""
        lim, target, step = self.limit(), self.target, self.policy.limit.round_to
        up, down = target > lim, target < lim
        rounded = np.where(up, np.floor(target / step) * step, np.minimum(np.ceil(target / step) * step, lim))
        self.new_limit = np.where(up, np.maximum(rounded, lim), np.where(down, rounded, lim))
        self.action = np.where(self.new_limit > lim, "increase",
                               np.where(self.new_limit < lim, "decrease", "keep")).astype(object)

    def apply(self, rule: Rule) -> None:
        """Fire `rule` where its predicate holds; nowhere when a model output it needs is absent."""
        rows = np.zeros(self.n, dtype=bool)
        if not self.absent.intersection(rule.needs):
            with self.reading(f"rule {rule.code}", rule.needs):
                rows = np.asarray(rule.when(self), dtype=bool)
                if rows.any():
                    rule.then(self, rows)
        self.fired[rule.code] = rows
        self._drawn |= rule.randomises  # by the rule's place in the order, not by whether it fired in this chunk

    def adverse(self, rule: Rule) -> np.ndarray:
        """Where the finished decision is `rule`'s adverse one."""
        rows = self.fired.get(rule.code, np.zeros(self.n, dtype=bool))
        if rule.blame is None or not rows.any():
            return rows
        with self.reading(f"rule {rule.code}", rule.needs):
            return rows & rule.blame(self)

    def has_model(self, target: str) -> bool:
        return EXPLAINED_BY[target] not in self.absent

    def text(self, rule: Rule, rows: np.ndarray) -> np.ndarray:
        """`rule`'s reason for `rows`, built per placeholder (not per row); numbers are whole unless formatted."""
        out = pd.Series("", index=np.arange(int(rows.sum())), dtype=object)
        with self.reading(f"rule {rule.code}", rule.needs):
            for literal, name, spec, _ in string.Formatter().parse(rule.reason):
                out = out + literal
                if name is None:
                    continue
                values = rule.fields.get(name, FIELDS.get(name))
                if values is not None:
                    out = out + _numbers(values(self)[rows], spec)
                else:
                    out = out + format(self._key(rule, name), spec)
        return out.to_numpy(dtype=object)

    def _key(self, rule: Rule, name: str):
        """The policy key a reason names, as in {limit.el_budget}."""
        section, _, key = name.partition(".")
        try:
            return getattr(getattr(self.policy, section), key)
        except AttributeError:
            raise KeyError(f"rule {rule.code}: the reason's {{{name}}} is neither a field "
                           f"({', '.join([*rule.fields, *FIELDS])}) nor a policy key") from None


# placeholders every reason may use: the account's own numbers
FIELDS: dict[str, Callable[[Decision], np.ndarray]] = {
    "dpd": Decision.dpd,
    "balance": Decision.balance,
    "score": lambda d: d.score,
}


def _numbers(values: np.ndarray, spec: str) -> pd.Series:
    """Numbers as text: whole numbers by default, else with the format spec; text (a field's phrase) as it is."""
    if values.dtype == object:
        return pd.Series(values)
    v = pd.Series(np.round(values, 0) if spec == "" else values)
    return v.astype("int64").astype(str) if spec == "" else v.map(lambda x: format(x, spec))


def evaluate(state: pd.DataFrame, policy: Policy, rules: Iterable[Rule], *, score_lo: float,
             score_hi: float) -> Decision:
    """Every rule applied to `state`, stage by stage, in the order listed within a stage."""
    rules = tuple(rules)
    codes = [r.code for r in rules]
    if len(set(codes)) < len(codes):
        raise ValueError(f"rule codes must be distinct, got {codes}")
    d = Decision(state, policy, inputs(rules), score_lo, score_hi)
    for stage in STAGES:
        d.open(stage)
        for rule in rules:
            if rule.stage == stage:
                d.apply(rule)
    return d
