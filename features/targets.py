"""The targets, declared once: what each predicts, on whom it is trained, for whom it is scored.

Labels (features/labels.py), the panel, training, the simulator's truth, the model bundle and the nightly
job all read this declaration; nothing else lists targets or stands for one by a number. The population a
target is *trained* on is where its label is defined; the population it is *scored* on is where the job
gives its probability, null elsewhere. They differ on purpose: `default` learns from accounts below its
threshold at T (an account already there has no "will it get there" to learn), yet the job scores every
account on the book, because the policy's loss budget and freeze reasons read a PD for late accounts too;
`self_cure` means something only for an account 1-29 days past due, so it is trained and scored there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAYS_PER_MONTH = 31  # a performance window in days, rounded up to whole months, is the embargo


@dataclass(frozen=True)
class LabelConfig:
    """The performance windows and thresholds of the label rules (the `[labels]` section of train.toml)."""

    default_dpd: int = 30
    default_months: int = 6
    early_warning_days: int = 35
    self_cure_days: int = 30

    def __post_init__(self) -> None:
        for name in ("default_dpd", "default_months", "early_warning_days", "self_cure_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"LabelConfig.{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Population:
    """Accounts on the book at T (open, neither charged off nor closed, not a repaid loan) within a band of days
    past due."""

    name: str
    text: str
    min_dpd: int = 0
    max_dpd: int | None = None  # inclusive; None: no upper bound
    below_default_dpd: bool = False  # bounded by LabelConfig.default_dpd instead (30, or 90 for the variant)

    def mask(self, dpd_now: np.ndarray, on_book: np.ndarray, labels: LabelConfig | None = None) -> np.ndarray:
        """Which accounts belong, from their DPD at T and whether they are on the book."""
        dpd = np.asarray(dpd_now)
        inside = np.asarray(on_book, dtype=bool) & (dpd >= self.min_dpd)
        if self.max_dpd is not None:
            inside &= dpd <= self.max_dpd
        if self.below_default_dpd:
            inside &= dpd < (labels or LabelConfig()).default_dpd
        return inside


ON_BOOK = Population("on_book", "every account on the book at T")
BELOW_DEFAULT = Population("below_default", "accounts on the book below the default threshold (30 DPD) at T",
                           below_default_dpd=True)
LATE_1_29 = Population("late_1_29", "accounts 1-29 days past due at T", min_dpd=1, max_dpd=29)
# an account 30+ days past due is in arrears already: there is nothing left to warn of
NOT_IN_ARREARS = Population("not_in_arrears", "accounts on the book below 30 days past due at T", max_dpd=29)


@dataclass(frozen=True)
class Target:
    """One target: its label rule, populations, performance window and the columns that carry it."""

    name: str
    rule: str  # the label rule in words (reports, docs)
    trained_on: Population
    scored_on: Population
    window: str  # the LabelConfig field that sets the performance window
    window_unit: str  # "months" or "days"
    output: str  # the calibrated probability's column in the bundle's and the job's outputs
    # the label's 1 is the good outcome (cured), not the bad one: a feature's declared risk direction is then
    # the model's direction reversed, and an adverse reason is what lowers the probability
    good_outcome: bool = False

    @property
    def direction(self) -> int:
        """+1 where the probability rises with risk (a bad outcome), -1 where it falls (a good one)."""
        return -1 if self.good_outcome else 1

    @property
    def truth_true(self) -> str:
        """The synthetic truth's probability given the hidden state."""
        return f"p_{self.name}_true"

    @property
    def truth_bayes(self) -> str:
        """The synthetic truth's Bayes-optimal probability given what a lender knows at T."""
        return f"p_{self.name}_bayes"

    def window_days(self, labels: LabelConfig) -> int:
        value = getattr(labels, self.window)
        return value * DAYS_PER_MONTH if self.window_unit == "months" else value

    def embargo_months(self, labels: LabelConfig) -> int:
        """Month ends dropped between time slices: one performance window, so no label spans two slices."""
        return max(1, math.ceil(self.window_days(labels) / DAYS_PER_MONTH))


TARGETS = (
    Target("default", "reaches the default threshold (30 DPD; 90 for the Basel / IFRS 9 variant) within the "
           "performance window after T", BELOW_DEFAULT, ON_BOOK, "default_months", "months", "pd_default"),
    Target("early_warning", "the first bill due after T is settled 1+ days late or is still unpaid a day after "
           "its due date", NOT_IN_ARREARS, NOT_IN_ARREARS, "early_warning_days", "days", "p_early_warning"),
    Target("early_warning_beyond_grace", "as early_warning, but later than the account's grace days",
           NOT_IN_ARREARS, NOT_IN_ARREARS, "early_warning_days", "days", "p_early_warning_beyond_grace"),
    Target("self_cure", "back to 0 DPD within the window after T without reaching 30 DPD", LATE_1_29, LATE_1_29,
           "self_cure_days", "days", "p_self_cure", good_outcome=True),
)
TARGET_NAMES = tuple(t.name for t in TARGETS)
BY_NAME = {t.name: t for t in TARGETS}
DEFAULT_TARGETS = ("default", "early_warning", "self_cure")  # trained unless the configuration says otherwise
SLOT = {t.name: i for i, t in enumerate(TARGETS)}  # a target's place in compiled arrays, derived by name


def target(name: str) -> Target:
    """The declared target `name`, or a ValueError listing the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}: choose from {', '.join(TARGET_NAMES)}") from None


def check_targets(names) -> tuple[str, ...]:
    """The names as a tuple, refused if empty or if any is not declared."""
    names = tuple(names)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise ValueError(f"unknown target(s) {unknown or '(none given)'}: choose from {', '.join(TARGET_NAMES)}")
    return names
