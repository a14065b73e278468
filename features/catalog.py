"""The feature catalog: every feature declared once.

A declaration says what the feature means (description), over which window, which way risk goes
(+1: more of it is riskier, -1: less is riskier, 0: no stated direction), and how it reads as the reason for
an adverse decision (`reason`: a sentence around the account's own value, or `NotAReason` with why it never
is one). The builder's output columns, LightGBM's monotone constraints, reason texts and the report's feature
table all read it.

Windowed features are data, not code: `Feature(signal=..., agg=..., window=...)` aggregates one of the
per-bill signals below over the account's last N bills, last N revolving statements, or bills due in the
last D days, all as known at the end of day T. `agg="others"` counts the signal over the window on each of
the customer's *other* accounts open at T and sums them (0 when there are none): the customer's behaviour
elsewhere, declared the same way. Over a window of days, accounts the customer closed or repaid within the
window count too: their bills leave the window as they age, so the customer's record travels from one cash
loan to the next without growing with how far back the records go. Adding such a feature is adding a declaration. State
features (`agg="state"`) are the few that need their own code: streaks, days since, balances, limits,
tenure, account attributes, the customer's other accounts and the macro index. Those the kernel keeps while
walking an account's bills are named in ACCOUNT_STATE below, and a new one is that name, its declaration and
the line of the kernel that writes its slot; a new signal likewise is its entry in SIGNALS and its line in
the kernel's `_signals`.

Each feature has a fingerprint: a hash of its declaration and of its `semantics` version, which is bumped
when a change of code changes the feature's values under the same declaration. Pinned values
(tests/golden/feature_values.json) are keyed by it, so values that move without a bump fail a test. How a
feature reads as a reason is wording, not computation: it enters neither the fingerprint nor the catalog
version, so rewording a reason strands no model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from hashlib import sha256

# A bill's growth over the previous one is capped: after a near-zero month (a few cents due) the ratio runs to
# thousands, and one such month would swamp any mean over a window; a bill more than eleven times the one before
# says no more for being larger still. The downside is bounded by itself (amounts are never negative: -1).
GROWTH_CAP = 10.0
# Per-bill signals as of T: each is a named slot the builder's kernel writes once per bill visit
# (features/kernels.py, `_signals`); the order here numbers the slots.
SIGNALS = {
    "lag1": "settled by T exactly 1 day after its due date",
    "lag2": "settled by T exactly 2 days after its due date",
    "late_within_grace": "settled by T 1..grace_days days late (not reported)",
    "late_beyond_grace": "settled later than grace_days after due, or unpaid with DPD beyond grace",
    "late": "settled 1+ days late, or unpaid 1+ days after due",
    "depth": "days late: max(lag, 0) if settled by T, else days past due at T",
    "late3": "3+ days late (settled or still unpaid)",
    "late30": "30+ days late (settled or still unpaid)",
    "paid_ratio": "min(paid by T, amount due) / amount due (none for zero or converted bills)",
    "util": "statement amount / limit in force at the statement date (revolving statements only)",
    "min_only": "revolving statement settled by T with less than the full amount paid",
    "part_paid": "something paid by T but less than the minimum due",
    "days_early": "days paid before the due date (0 if on time or late; none if unpaid)",
    "cure_days": "days from due to settlement, for bills settled late (none otherwise)",
    "penalty": "penalty interest accrued by T on the minimum due, beyond grace",
    "converted": "statement converted into installments by T",
    "installment": "installment of a converted statement",
    "amount": "amount due",
    "early": "settled by T before its due date",
    "paid_share": "paid by T / amount due, uncapped: an overpayment shows above 1 (none for zero or converted bills)",
    "paid_prev": "paid by T / amount due of the account's previous bill: the bureau's payment over the last "
                 "statement (none without a previous bill, when it was 0, or for a converted bill)",
    "growth": f"amount due / amount due of the account's previous bill - 1, at most {GROWTH_CAP:g} (none without a "
              "previous bill, or when it was 0)",
    "util_change": "util of the statement minus util of the account's previous statement (statements only; none "
                   "without both)",
}
SIGNAL_INDEX = {name: i for i, name in enumerate(SIGNALS)}
# Per-account state as of T that the kernel keeps walking an account's bills, one output slot each, written
# by name (features/kernels.py): the state features of these names, and limit_prev_d360, which only
# limit_ratio_d360 reads.
# Counts over an account's whole record saturate at the longest bill window: beyond 36 bills a record says no
# more, and an uncapped count would tell how far back the lender's warehouse goes rather than how the account
# behaves (a model trained on shorter records would then read longer ones out of range).
LONG_RECORD = 36
RECORD_COUNTS = ("ontime_streak", "longest_ontime_streak", "bills_due", "late_run")
ACCOUNT_STATE = ("dpd_now", "bills_since_late", "days_since_late", "ontime_streak", "longest_ontime_streak",
                 "bills_due", "days_since_due", "balance_now", "limit_now", "limit_changes_d360", "limit_prev_d360",
                 "late_run")
AGGS = ("count", "sum", "mean", "max", "min", "others", "state")
DAY_PRECISION_SIGNALS = frozenset({"lag1", "lag2", "late_within_grace", "late_beyond_grace", "early", "days_early",
                                   "cure_days", "penalty"})


@dataclass(frozen=True)
class Bills:
    """The account's last `n` bills due by T, newest first."""

    n: int
    kind: int = field(default=0, init=False, repr=False)

    def text(self) -> str:
        return f"the last {self.n} bills" if self.n > 1 else "the newest bill only"


@dataclass(frozen=True)
class Statements:
    """The account's last `n` revolving statements due by T (installment bills left out)."""

    n: int
    kind: int = field(default=1, init=False, repr=False)

    def text(self) -> str:
        return f"the last {self.n} statements"


@dataclass(frozen=True)
class Days:
    """Bills due in the `d` days up to and including T."""

    d: int
    kind: int = field(default=2, init=False, repr=False)

    def text(self) -> str:
        return f"the last {self.d} days"


Window = Bills | Statements | Days


@dataclass(frozen=True)
class Reason:
    """How a feature reads as the reason for an adverse decision, with the account's own value.

    `text` is a sentence a customer service agent can read out: "{value}" is the account's value as `unit`
    formats it, and "[a|b]" reads a when that value is 1 and b otherwise ("1 bill was", "3 bills were").
    `zero` and `negative` replace the sentence for a value of 0 and below 0 (a negative value is shown without
    its sign). `missing` is the sentence for a missing value; None: a missing value is never a reason (it
    says "never happened" or "not this product", which is no reason against the customer).
    Units (models/reasons.py formats them): count (whole), days (at most one decimal), share (a ratio as a
    whole percentage), points (a difference of shares, in percentage points), amount (money: whole from 10,
    else cents), yes/no (an indicator: `text` for 1, `zero` for 0).
    """

    text: str
    unit: str = "count"
    zero: str | None = None
    negative: str | None = None
    missing: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in REASON_UNITS:
            raise ValueError(f"reason {self.text!r}: unit must be one of {', '.join(REASON_UNITS)}, got {self.unit!r}")
        if self.unit == "yes/no" and self.zero is None:
            raise ValueError(f"reason {self.text!r}: a yes/no reason needs the sentence for no (zero=...)")


@dataclass(frozen=True)
class NotAReason:
    """A feature the models may read that is never offered as the reason for an adverse decision: the
    customer's own conduct is the reason, not the lender's decisions, the product, the economy, the calendar
    or what was recorded once at application. `why` says which."""

    why: str


REASON_UNITS = ("count", "days", "share", "points", "amount", "yes/no")
LENDER = NotAReason("the lender's own decision about the line, not the customer's conduct")
PRODUCT = NotAReason("the product and its terms, not the customer's conduct")
APPLICATION = NotAReason("recorded once at application: it explains no change, and the customer cannot act on it")
ECONOMY = NotAReason("the economy or the season, not the customer's conduct")
BILLING_CYCLE = NotAReason("where the day falls in the billing cycle, not the customer's conduct")


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    risk: int
    family: str
    window: Window | None = None
    signal: str | None = None
    agg: str = "state"
    # bumped when the feature's values change while its declaration stays (a fix in the code behind it):
    # the fingerprint changes with it, and so do the pinned values (tests/test_feature_golden.py)
    semantics: int = field(default=1, repr=False)
    # how it reads as an adverse reason (models/reasons.py); None: "description: value". Wording only: in
    # neither the fingerprint nor the catalog version (repr=False)
    reason: Reason | NotAReason | None = field(default=None, repr=False)
    # a one-value-per-date feature whose values come round every year (the calendar month): see
    # `judged_by_range`. How drift reads the feature, not what its values are: in neither the fingerprint nor
    # the catalog version (repr=False)
    seasonal: bool = field(default=False, repr=False)
    # its values over the book are set by the day the job runs (where that day falls in the billing cycle), so
    # its CSI against training rows spread over the month says when the job ran, not how the book moved:
    # drift reports it and never judges it. Like `seasonal`, in neither the fingerprint nor the catalog version
    run_day: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.risk not in (-1, 0, 1):
            raise ValueError(f"feature {self.name}: risk must be -1, 0 or +1, got {self.risk}")
        if self.agg not in AGGS:
            raise ValueError(f"feature {self.name}: agg must be one of {AGGS}, got {self.agg!r}")
        if self.agg != "state":
            if self.signal not in SIGNALS:
                raise ValueError(f"feature {self.name}: unknown signal {self.signal!r}; known: {', '.join(SIGNALS)}")
            if self.window is None:
                raise ValueError(f"feature {self.name}: a windowed aggregate needs a window")
        if self.seasonal and not self.one_value_per_date:
            raise ValueError(f"feature {self.name}: only a one-value-per-date feature (family 'macro') is declared "
                             "seasonal; an account's own values are judged by their distribution")

    @property
    def fingerprint(self) -> str:
        """A short SHA-256 of what defines the feature's values: name, window, signal, aggregation, risk
        direction and semantics version; not its description or family."""
        text = repr((self.name, self.window, self.signal, self.agg, self.risk, self.semantics))
        return sha256(text.encode()).hexdigest()[:12]

    @property
    def may_be_reason(self) -> bool:
        """Whether the feature may be offered as the reason for an adverse decision."""
        return not isinstance(self.reason, NotAReason)

    @property
    def one_value_per_date(self) -> bool:
        """Shared by every account at a date (the economy, the calendar): one night's book holds a single value
        of it, so its CSI against a training reference spread over many months is large by construction."""
        return self.family == "macro"

    @property
    def judged_by_range(self) -> bool:
        """Whether scoring judges the feature's drift by the range its values took in training.

        A one-value-per-date level (the stress index, the unemployment rate) means something new when it leaves
        the range the models were trained on: the trees are flat beyond their outermost split, so the models
        cannot tell a far worse economy from the worst one they saw. The training range is recorded in the
        bundle's drift reference and tonight's value is held against it (scoring/drift.py). A seasonal one (the
        calendar month) comes round every year: a month the training months missed is no news about the
        economy, so it is declared `seasonal` and never judged. This is declared rather than read from the risk
        direction, which is the models' monotone constraint: an indicator with no stated direction can be a
        level all the same.
        """
        return self.one_value_per_date and not self.seasonal

    @property
    def day_precision(self) -> bool:
        """Needs day-exact dates: missing (NaN) for accounts whose source only has months."""
        return self.signal in DAY_PRECISION_SIGNALS or self.name in _DAY_PRECISION_STATE


_DAY_PRECISION_STATE = frozenset({"days_since_late", "days_since_due"})
_WINDOWS = (Bills(1), Bills(3), Bills(6), Bills(12), Days(30), Days(90), Days(180), Days(360))


def _wname(w: Window) -> str:
    return {0: "n", 1: "s", 2: "d"}[w.kind] + str(w.n if w.kind != 2 else w.d)


def _counted(w: Window, one: str, many: str | None = None, not_one: str | None = None) -> Reason:
    """The reason of a count over a window: `one` is what a single bill (or statement) did, "was paid late";
    `many` the same of several ("were ..."), `not_one` its denial for the newest one alone ("was not ...")."""
    many = many or one.replace("was ", "were ", 1)
    not_one = not_one or one.replace("was ", "was not ", 1)
    item = "statement" if w.kind == 1 else "bill"
    if w.kind != 2 and w.n == 1:
        return Reason(f"the newest {item} {one}", "yes/no", zero=f"the newest {item} {not_one}")
    if w.kind == 2:
        return Reason(f"{{value}} [bill|bills] due in the last {w.d} days [{one}|{many}]",
                      zero=f"no bill due in the last {w.d} days {one}")
    return Reason(f"{{value}} of the last {w.n} {item}s [{one}|{many}]", zero=f"none of the last {w.n} {item}s {one}")


def _short_lags() -> list[Feature]:
    out = []
    for w in _WINDOWS:
        wn, wt = _wname(w), w.text()
        out += [
            Feature(f"lag1_{wn}", f"bills paid exactly 1 day late, among {wt}", +1, "short_lag", w, "lag1", "count",
                    reason=_counted(w, "was paid exactly 1 day late")),
            Feature(f"lag2_{wn}", f"bills paid exactly 2 days late, among {wt}", +1, "short_lag", w, "lag2", "count",
                    reason=_counted(w, "was paid exactly 2 days late")),
            Feature(f"grace_late_{wn}", f"bills paid late but within the grace period, among {wt}", +1,
                    "short_lag", w, "late_within_grace", "count",
                    reason=_counted(w, "was paid late, within the grace period")),
            Feature(f"beyond_grace_{wn}", f"bills paid or still unpaid beyond the grace period, among {wt}", +1,
                    "short_lag", w, "late_beyond_grace", "count",
                    reason=_counted(w, "was paid late beyond the grace period, or is still unpaid",
                                    "were paid late beyond the grace period, or are still unpaid",
                                    "was not late beyond the grace period")),
        ]
    return out


NO_BILL_YET = "no bill has fallen due yet"


def _of_record(did: str, none_did: str, item: str = "bills") -> Reason:
    """The reason of a share over the account's record, the last 36 bills (statements) at most: a short
    record's share is over what there is of it."""
    return Reason(f"{{value}} of the account's {item} (the last 36 at most) {did}", "share",
                  zero=f"none of the account's {item} (the last 36 at most) {none_did}", missing=NO_BILL_YET)


def _depth() -> list[Feature]:
    f = [
        Feature("dpd_now", "days past due now (oldest unpaid bill)", +1, "delinquency",
                reason=Reason("{value} [day|days] past due now", "days", zero="nothing past due now")),
        Feature("worst_dpd_n3", "worst days late among the last 3 bills", +1, "delinquency", Bills(3), "depth", "max",
                reason=Reason("up to {value} [day|days] late on the last 3 bills", "days",
                              zero="none of the last 3 bills was late", missing=NO_BILL_YET)),
        Feature("worst_dpd_n12", "worst days late among the last 12 bills", +1, "delinquency", Bills(12), "depth",
                "max", reason=Reason("up to {value} [day|days] late on the last 12 bills", "days",
                                     zero="none of the last 12 bills was late", missing=NO_BILL_YET)),
        Feature("worst_dpd_n36", "worst days late among the last 36 bills (the long record, or as much of it as "
                "there is)", +1, "delinquency", Bills(36), "depth", "max",
                reason=Reason("up to {value} [day|days] late on the last 36 bills", "days",
                              zero="none of the last 36 bills was late", missing=NO_BILL_YET)),
        Feature("worst_dpd_d360", "worst days late among bills due in the last 360 days", +1, "delinquency",
                Days(360), "depth", "max",
                reason=Reason("up to {value} [day|days] late on bills due in the last 360 days", "days",
                              zero="no bill due in the last 360 days was late",
                              missing="no bill fell due in the last 360 days")),
        Feature("late_n6", "bills paid late or still late, among the last 6 bills", +1, "delinquency", Bills(6),
                "late", "count", reason=_counted(Bills(6), "was late (paid late or still unpaid)")),
        Feature("late_n12", "bills paid late or still late, among the last 12 bills", +1, "delinquency", Bills(12),
                "late", "count", reason=_counted(Bills(12), "was late (paid late or still unpaid)")),
        Feature("late3_n12", "bills 3 or more days late, among the last 12 bills", +1, "delinquency", Bills(12),
                "late3", "count", reason=_counted(Bills(12), "was 3 or more days late")),
        Feature("late30_n12", "bills 30 or more days late, among the last 12 bills", +1, "delinquency", Bills(12),
                "late30", "count", reason=_counted(Bills(12), "was 30 or more days late")),
        Feature("late30_d360", "bills 30 or more days late, due in the last 360 days", +1, "delinquency",
                Days(360), "late30", "count", reason=_counted(Days(360), "was 30 or more days late")),
        Feature("late_n36", "bills paid late or still late, among the last 36 bills (the long record)", +1,
                "delinquency", Bills(36), "late", "count",
                reason=_counted(Bills(36), "was late (paid late or still unpaid)")),
        Feature("late3_n36", "bills 3 or more days late, among the last 36 bills", +1, "delinquency", Bills(36),
                "late3", "count", reason=_counted(Bills(36), "was 3 or more days late")),
        Feature("late_share_n36", "bills paid late or still late, as a share of the last 36 bills or of as many as "
                "there are: a short record says how much of it was late", +1, "delinquency", Bills(36), "late",
                "mean", reason=_of_record("were late (paid late or still unpaid)", "was late")),
        Feature("late3_share_n36", "bills 3 or more days late, as a share of the last 36 bills or of as many as "
                "there are", +1, "delinquency", Bills(36), "late3", "mean",
                reason=_of_record("were 3 or more days late", "was 3 or more days late")),
        Feature("depth_mean_n36", "days late, mean over the last 36 bills (0 for bills paid on time)", +1,
                "delinquency", Bills(36), "depth", "mean",
                reason=Reason("{value} [day|days] late on average over the last 36 bills", "days",
                              zero="none of the last 36 bills was late", missing=NO_BILL_YET)),
        Feature("bills_since_late", "bills since the last late one (0 = the newest; -1 = never late)", 0,
                "delinquency", reason=Reason("the last late bill was {value} [bill|bills] before the newest",
                                             zero="the newest bill was late", negative="no bill has been late")),
        Feature("days_since_late", "days since the due date of the last late bill (missing if never late)", -1,
                "delinquency", reason=Reason("the last late bill fell due {value} [day|days] ago", "days")),
        Feature("ontime_streak", f"newest bills in a row paid on or before their due date (at most {LONG_RECORD})",
                -1, "delinquency", reason=Reason("{value} [bill|bills] in a row paid on time, up to the newest",
                                                 zero="the newest bill was not paid on time"), semantics=2),
        Feature("late_run", f"newest bills in a row paid late or still late, up to the newest: months in a row "
                f"delinquent (0: the newest was not late; at most {LONG_RECORD})", +1, "delinquency",
                reason=Reason("{value} [bill|bills] in a row late, up to the newest",
                              zero="the newest bill was not late")),
        Feature("longest_ontime_streak", f"longest run of bills paid on time (at most {LONG_RECORD})", -1,
                "delinquency", reason=Reason("at most {value} [bill|bills] in a row paid on time so far",
                                             zero="no bill paid on time so far"), semantics=2),
    ]
    return f


def _paid_share(n: int) -> Reason:
    return Reason(f"{{value}} of the amount due paid on the last {n} bills, on average", "share")


def _paid_over(n: int) -> Reason:
    return Reason(f"{{value}} of the amount due paid on the last {n} bills, on average, overpayments included",
                  "share")


def _payment() -> list[Feature]:
    return [
        Feature("paid_ratio_n3", "share of the amount due paid, mean over the last 3 bills", -1, "payment",
                Bills(3), "paid_ratio", "mean", reason=_paid_share(3)),
        Feature("paid_ratio_n6", "share of the amount due paid, mean over the last 6 bills", -1, "payment",
                Bills(6), "paid_ratio", "mean", reason=_paid_share(6)),
        Feature("paid_ratio_n12", "share of the amount due paid, mean over the last 12 bills", -1, "payment",
                Bills(12), "paid_ratio", "mean", reason=_paid_share(12)),
        Feature("paid_ratio_n36", "share of the amount due paid, mean over the last 36 bills", -1, "payment",
                Bills(36), "paid_ratio", "mean", reason=_paid_share(36)),
        Feature("paid_share_n1", "paid over the amount due, newest bill, overpayments included (above 1: more "
                "than the bill was paid)", -1, "payment", Bills(1), "paid_share", "mean",
                reason=Reason("{value} of the amount due paid on the newest bill", "share")),
        Feature("paid_share_n3", "paid over the amount due, mean over the last 3 bills, overpayments included", -1,
                "payment", Bills(3), "paid_share", "mean", reason=_paid_over(3)),
        Feature("paid_share_n6", "paid over the amount due, mean over the last 6 bills, overpayments included", -1,
                "payment", Bills(6), "paid_share", "mean", reason=_paid_over(6)),
        Feature("paid_share_min_n6", "paid over the amount due, least among the last 6 bills", -1, "payment",
                Bills(6), "paid_share", "min",
                reason=Reason("as little as {value} of the amount due paid on one of the last 6 bills", "share",
                              zero="nothing paid on one of the last 6 bills")),
        Feature("paid_prev_n1", "paid on the newest bill over the amount due of the bill before: the payment over "
                "the last statement", -1, "payment", Bills(1), "paid_prev", "mean",
                reason=Reason("{value} of the previous bill's amount paid on the newest bill", "share")),
        Feature("paid_prev_n3", "paid on each bill over the amount due of the bill before, mean over the last 3 "
                "bills", -1, "payment", Bills(3), "paid_prev", "mean",
                reason=Reason("{value} of the previous bill's amount paid on each of the last 3 bills, on average",
                              "share")),
        Feature("early_n1", "the newest bill was paid before its due date (1) or not (0)", -1, "payment", Bills(1),
                "early", "count", reason=_counted(Bills(1), "was paid before its due date")),
        Feature("early_n3", "bills paid before their due date, among the last 3 bills", -1, "payment", Bills(3),
                "early", "count", reason=_counted(Bills(3), "was paid before its due date",
                                                  "were paid before their due date")),
        Feature("early_n6", "bills paid before their due date, among the last 6 bills", -1, "payment", Bills(6),
                "early", "count", reason=_counted(Bills(6), "was paid before its due date",
                                                  "were paid before their due date")),
        Feature("early_n12", "bills paid before their due date, among the last 12 bills", -1, "payment",
                Bills(12), "early", "count", reason=_counted(Bills(12), "was paid before its due date",
                                                             "were paid before their due date")),
        Feature("early_n36", "bills paid before their due date, among the last 36 bills", -1, "payment",
                Bills(36), "early", "count", reason=_counted(Bills(36), "was paid before its due date",
                                                             "were paid before their due date")),
        Feature("min_only_n1", "the newest statement was paid with less than the full amount (1) or not (0)", +1,
                "payment", Statements(1), "min_only", "count",
                reason=_counted(Statements(1), "was paid with less than the full amount")),
        Feature("min_only_n6", "statements paid with less than the full amount, among the last 6 statements", +1,
                "payment", Statements(6), "min_only", "count",
                reason=_counted(Statements(6), "was paid with less than the full amount")),
        Feature("min_only_n12", "statements paid with less than the full amount, among the last 12 statements",
                +1, "payment", Statements(12), "min_only", "count",
                reason=_counted(Statements(12), "was paid with less than the full amount")),
        Feature("revolving_share_n36", "statements paid with less than the full amount, as a share of the last 36 "
                "statements or of as many as there are: the months revolving", +1, "payment", Statements(36),
                "min_only", "mean", reason=_of_record("were paid with less than the full amount",
                                                      "was paid with less than the full amount", "statements")),
        Feature("part_paid_n6", "bills part-paid but below the minimum, among the last 6 bills", +1, "payment",
                Bills(6), "part_paid", "count", reason=_counted(Bills(6), "was paid in part, below the minimum due")),
        Feature("days_early_n6", "days paid before the due date, mean over the last 6 bills", -1, "payment",
                Bills(6), "days_early", "mean",
                reason=Reason("paid {value} [day|days] before the due date on average over the last 6 bills", "days",
                              zero="none of the last 6 bills was paid before its due date")),
        Feature("cure_days_n12", "days to pay once late, mean over late bills among the last 12", +1, "payment",
                Bills(12), "cure_days", "mean",
                reason=Reason("late bills among the last 12 took {value} [day|days] to pay on average", "days")),
        Feature("penalty_d360", "penalty interest accrued on bills due in the last 360 days", +1, "payment",
                Days(360), "penalty", "sum",
                reason=Reason("penalty interest of {value} on bills due in the last 360 days", "amount",
                              zero="no penalty interest on bills due in the last 360 days")),
    ]


def _usage() -> list[Feature]:
    return [
        Feature("util_n1", "statement amount over limit, newest statement", +1, "usage", Statements(1), "util",
                "mean", reason=Reason("the newest statement used {value} of the credit limit", "share")),
        Feature("util_n3", "statement amount over limit, mean over the last 3 statements", +1, "usage",
                Statements(3), "util", "mean",
                reason=Reason("the last 3 statements used {value} of the credit limit on average", "share")),
        Feature("util_n6", "statement amount over limit, mean over the last 6 statements", +1, "usage",
                Statements(6), "util", "mean",
                reason=Reason("the last 6 statements used {value} of the credit limit on average", "share")),
        Feature("util_n12", "statement amount over limit, mean over the last 12 statements", +1, "usage",
                Statements(12), "util", "mean",
                reason=Reason("the last 12 statements used {value} of the credit limit on average", "share")),
        Feature("util_trend", "util_n3 minus util_n12: rising use of the line", +1, "usage",
                reason=Reason("use of the credit limit rose by {value} percentage [point|points] (the last 3 "
                              "statements against the last 12)", "points",
                              zero="use of the credit limit held steady (the last 3 statements against the last 12)",
                              negative="use of the credit limit fell by {value} percentage [point|points] (the last 3 "
                              "statements against the last 12)")),
        Feature("util_change_n1", "statement amount over limit, newest statement minus the one before", +1,
                "usage", Statements(1), "util_change", "mean",
                reason=Reason("use of the credit limit rose by {value} percentage [point|points] on the newest "
                              "statement", "points", zero="use of the credit limit held steady on the newest statement",
                              negative="use of the credit limit fell by {value} percentage [point|points] on the "
                              "newest statement")),
        Feature("util_slope_n6", "statement amount over limit, its change from one statement to the next, mean over "
                "the last 6 statements: the slope of the line's use", +1, "usage", Statements(6), "util_change",
                "mean", reason=Reason("use of the credit limit rose by {value} percentage [point|points] a statement "
                                      "on average over the last 6 statements", "points",
                                      zero="use of the credit limit held steady over the last 6 statements",
                                      negative="use of the credit limit fell by {value} percentage [point|points] a "
                                      "statement on average over the last 6 statements")),
        Feature("util_max_n12", "highest statement amount over limit, last 12 statements", +1, "usage",
                Statements(12), "util", "max",
                reason=Reason("up to {value} of the credit limit used on the last 12 statements", "share")),
        Feature("util_now", "unpaid balance over the limit in force now", +1, "usage",
                reason=Reason("the unpaid balance is {value} of the credit limit", "share", zero="nothing unpaid now")),
        Feature("balance_now", "unpaid amount of bills issued by now", 0, "usage",
                reason=Reason("an unpaid balance of {value}", "amount", zero="nothing unpaid now")),
        Feature("limit_now", "credit limit in force now", -1, "usage", reason=LENDER),
        Feature("limit_changes_d360", "limit changes in the last 360 days", 0, "usage", reason=LENDER),
        Feature("limit_ratio_d360", "limit now over the limit 360 days ago", -1, "usage", reason=LENDER),
        Feature("conversions_n12", "statements converted into installments, among the last 12 statements", +1,
                "usage", Statements(12), "converted", "count",
                reason=_counted(Statements(12), "was converted into installments")),
        Feature("installment_bills_n12", "installment bills among the last 12 bills", 0, "usage", Bills(12),
                "installment", "count", reason=_counted(Bills(12), "was an installment", "were installments")),
        Feature("amount_mean_n6", "amount due, mean over the last 6 bills", 0, "usage", Bills(6), "amount", "mean",
                reason=Reason("bills of {value} on average over the last 6", "amount",
                              zero="nothing due on the last 6 bills")),
        Feature("growth_n1", f"amount due over the previous bill's, minus 1, newest bill (at most {GROWTH_CAP:g})", 0,
                "usage", Bills(1), "growth", "mean",
                reason=Reason("the newest bill was {value} more than the one before", "share",
                              zero="the newest bill was as large as the one before",
                              negative="the newest bill was {value} less than the one before")),
        Feature("growth_n3", f"amount due over the previous bill's, minus 1, mean over the last 3 bills (each at "
                f"most {GROWTH_CAP:g})", 0, "usage", Bills(3), "growth", "mean",
                reason=Reason("bills grew by {value} from one to the next on average over the last 3", "share",
                              zero="bills held steady from one to the next over the last 3",
                              negative="bills shrank by {value} from one to the next on average over the last 3")),
        Feature("bills_due", f"bills due so far (at most {LONG_RECORD})", -1, "usage",
                reason=Reason("{value} [bill has|bills have] fallen due so far", zero=NO_BILL_YET), semantics=2),
        Feature("days_since_due", "days since the newest bill fell due (missing before the first): where T sits "
                "in the billing cycle, so how soon the next bill falls due", 0, "usage", reason=BILLING_CYCLE,
                run_day=True),
        Feature("tenure_days", "days since the account was opened", -1, "usage",
                reason=Reason("the account was opened {value} [day|days] ago", "days",
                              zero="the account was opened today")),
        Feature("installments_left", "a cash loan's installments still to fall due after T (missing for revolving "
                "lines and loans of unknown term): each one is a chance to be late", +1, "usage",
                reason=Reason("{value} cash loan [installment|installments] still to pay",
                              zero="no cash loan installment left to pay")),
        Feature("is_installment", "1 for a cash loan, 0 for a revolving line", 0, "usage", reason=PRODUCT),
        Feature("grace_days", "grace days of the account: late within them is not reported", 0, "usage",
                reason=PRODUCT),
        Feature("income_band", "income band recorded at application (missing when the source has none)", -1,
                "usage", reason=APPLICATION),
    ]


def _customer() -> list[Feature]:
    """The customer's other accounts: over bill windows and now, those on the book at T, a line its holder
    closed or a repaid loan no longer counting (semantics 2), so the figures do not grow with how far back the
    records go; over the last 360 days, those closed in that time too, so a repaid loan's record follows the
    customer."""
    others = "among the last {n} of the customer's other accounts"
    features = [
        Feature("cust_accounts", "the customer's accounts open now", 0, "customer",
                reason=Reason("the customer holds {value} open [account|accounts]")),
        Feature("cust_other_dpd_now", "days past due now on the customer's other accounts (worst)", +1,
                "customer", reason=Reason("{value} [day|days] past due now on another of the customer's accounts",
                                          "days", zero="nothing past due on the customer's other accounts")),
        Feature("cust_other_late_n6", "late bills among the last 6 of each of the customer's other accounts", +1,
                "customer", Bills(6), "late", "others",
                reason=Reason(f"{{value}} late [bill|bills] {others.format(n=6)}",
                              zero=f"no late bill {others.format(n=6)}")),
        Feature("cust_other_late3_n12", "bills 3+ days late among the last 12 of each of the customer's other "
                "accounts", +1, "customer", Bills(12), "late3", "others",
                reason=Reason(f"{{value}} [bill|bills] 3 or more days late {others.format(n=12)}",
                              zero=f"no bill 3 or more days late {others.format(n=12)}")),
        Feature("cust_other_late_n36", "late bills among the last 36 of each of the customer's other accounts", +1,
                "customer", Bills(36), "late", "others",
                reason=Reason(f"{{value}} late [bill|bills] {others.format(n=36)}",
                              zero=f"no late bill {others.format(n=36)}")),
        Feature("cust_other_early_n6", "bills paid before their due date among the last 6 of each of the "
                "customer's other accounts", -1, "customer", Bills(6), "early", "others",
                reason=Reason(f"{{value}} [bill|bills] paid before the due date {others.format(n=6)}",
                              zero=f"no bill paid before its due date {others.format(n=6)}")),
        Feature("cust_other_min_only_n6", "statements paid with less than the full amount among the last 6 of "
                "each of the customer's other accounts", +1, "customer", Statements(6), "min_only", "others",
                reason=Reason("{value} [statement|statements] paid with less than the full amount among the last 6 "
                              "of the customer's other accounts",
                              zero="no statement paid with less than the full amount among the last 6 of the "
                              "customer's other accounts")),
        Feature("cust_active_loans", "the customer's cash loans with a balance now", +1, "customer",
                reason=Reason("{value} cash [loan|loans] with a balance now", zero="no cash loan with a balance now")),
        Feature("cust_loan_balance", "unpaid amount on the customer's cash loans", +1, "customer",
                reason=Reason("{value} unpaid on cash loans", "amount", zero="nothing unpaid on cash loans")),
    ]
    recent = "in the last 360 days on the customer's other accounts, those closed in that time included"
    history = [
        Feature("cust_other_late_d360", f"late bills {recent}", +1, "customer", Days(360), "late", "others",
                reason=Reason(f"{{value}} late [bill|bills] {recent}", zero=f"no late bill {recent}")),
        Feature("cust_other_late3_d360", f"bills 3+ days late {recent}", +1, "customer", Days(360), "late3",
                "others", reason=Reason(f"{{value}} [bill|bills] 3 or more days late {recent}",
                                        zero=f"no bill 3 or more days late {recent}")),
        Feature("cust_other_late30_d360", f"bills 30+ days late {recent}", +1, "customer", Days(360), "late30",
                "others", reason=Reason(f"{{value}} [bill|bills] 30 or more days late {recent}",
                                        zero=f"no bill 30 or more days late {recent}")),
        Feature("cust_other_early_d360", f"bills paid before their due date {recent}", -1, "customer", Days(360),
                "early", "others", reason=Reason(f"{{value}} [bill|bills] paid before the due date {recent}",
                                                 zero=f"no bill paid before its due date {recent}")),
    ]
    return [replace(f, semantics=2) for f in features] + history


def _macro() -> list[Feature]:
    return [
        Feature("macro_stress_index", "household stress index, latest published", +1, "macro", reason=ECONOMY),
        Feature("macro_unemployment_rate", "unemployment rate, latest published", +1, "macro", reason=ECONOMY),
        Feature("calendar_month", "month of the year of T (1-12): the known seasons of the months ahead, such as "
                "the Spring Festival and the shopping festivals", 0, "macro", reason=ECONOMY, seasonal=True),
    ]


@dataclass(frozen=True)
class Catalog:
    """An ordered, name-unique set of features. `default_catalog()` is the project's."""

    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"catalog declares these features twice: {', '.join(dup)}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in the catalog")

    def __iter__(self):
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def windowed(self) -> list[Feature]:
        """Aggregates of one account's own bills."""
        return [f for f in self.features if f.agg not in ("state", "others")]

    @property
    def others(self) -> list[Feature]:
        """Counts over the customer's other accounts."""
        return [f for f in self.features if f.agg == "others"]

    def with_features(self, *extra: Feature) -> Catalog:
        return Catalog((*self.features, *extra))

    def monotone_constraints(self) -> list[int]:
        """LightGBM's monotone_constraints, in column order."""
        return [f.risk for f in self.features]

    def fingerprints(self) -> dict[str, str]:
        """Each feature's fingerprint, by name."""
        return {f.name: f.fingerprint for f in self.features}

    @property
    def version(self) -> str:
        """A short hash of the declarations: bundles record it, scoring checks it. A semantics version enters
        once bumped, so a catalog of first versions keeps the hash it always had."""
        text = "\n".join(repr(f) + (f" semantics={f.semantics}" if f.semantics != 1 else "") for f in self.features)
        return sha256(text.encode()).hexdigest()[:12]

    def to_markdown(self) -> str:
        sign = {1: "+1 (more is riskier)", -1: "-1 (more is safer)", 0: "0"}
        lines = [
            "# Feature catalog",
            "",
            "Generated from `features/catalog.py` by `python -m features catalog`; a test keeps it current.",
            f"Catalog version `{self.version}`, {len(self)} features. All are as known at the end of day T.",
            "Features marked *day* need day-exact dates and are missing for month-precision (bureau) accounts.",
            "",
            "| feature | family | description | window | risk | precision |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.features:
            window = f.window.text() if f.window else ""
            lines.append(f"| `{f.name}` | {f.family} | {f.description} | {window} | {sign[f.risk]} | "
                         f"{'day' if f.day_precision else ''} |")
        return "\n".join(lines) + "\n"


def default_catalog() -> Catalog:
    return Catalog(tuple(_short_lags() + _depth() + _payment() + _usage() + _customer() + _macro()))


# The thirteen columns of the independent reference (../shared/reference/subset_polars.py), same names.
REFERENCE_COLUMNS = ("lag1_n3", "lag1_n6", "lag1_n12", "lag2_n3", "lag2_n6", "lag2_n12", "worst_dpd_n12",
                     "bills_since_late", "ontime_streak", "paid_ratio_n6", "util_n3", "util_n12", "util_trend")
