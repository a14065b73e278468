"""The numbers that define the synthetic credit world, declared once.

Everything the simulator draws and everything the exact filter assumes comes from one `WorldParams`, so the
filter is Bayes-optimal *on the simulator's own model* by construction, not by a copy kept in step by hand.

Latent variables (hidden from every model):
  risk type k      0 low, 1 mid, 2 high -- fixed per customer, prior depends on the observed income band
  forgetful f      0/1 -- a habit of paying a day or two late that says nothing about solvency
  state s          0 healthy, 1 stretched, 2 distressed, 3 defaulting -- a Markov chain, month by month,
                   whose worsening moves scale with the risk type and with the published macro stress index
Each month every open account has one repayment *outcome* for the bills due that month, drawn from (s, f):
  early, on time, 1 day late, 2 days late, late 3..27 days, missed (unpaid 30+ days; cured later or charged off).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

STATES = ("healthy", "stretched", "distressed", "defaulting")
RISK_TYPES = ("low", "mid", "high")
OUTCOMES = ("early", "on_time", "lag1", "lag2", "late", "missed")
EARLY, ON_TIME, LAG1, LAG2, LATE, MISSED = range(6)
LATE_MIN, LATE_MAX = 3, 27  # a 'late' bill settles 3..27 days after due: before the next due date, below 30 DPD
UTIL_EDGES = (0.02, 0.10, 0.30, 0.60, 0.90, 1.00)  # spend as a share of the limit, five buckets


def _a(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class WorldParams:
    """All probabilities and conventions of the world. Frozen: a world is defined, not mutated."""

    # --- customers and products --------------------------------------------------------------------------
    two_product_share: float = 0.30  # customers holding a revolving line and a cash loan
    installment_only_share: float = 0.10  # of one-account customers, the share with only a cash loan
    open_at_start_share: float = 0.75  # revolving lines already open in the first month
    income_band_probs: tuple = (0.15, 0.25, 0.30, 0.20, 0.10)  # bands 1..5
    # P(risk type | income band): lower bands lean to higher risk
    risk_given_band: np.ndarray = field(default_factory=lambda: _a([
        [0.35, 0.40, 0.25],
        [0.45, 0.38, 0.17],
        [0.55, 0.33, 0.12],
        [0.62, 0.30, 0.08],
        [0.70, 0.25, 0.05],
    ]))
    forgetful_share: float = 0.25
    # --- latent dynamics -----------------------------------------------------------------------------------
    base_transition: np.ndarray = field(default_factory=lambda: _a([  # mid type, neutral macro; rows: from
        [0.965, 0.030, 0.0045, 0.0005],
        [0.220, 0.700, 0.068, 0.012],
        [0.060, 0.200, 0.640, 0.100],
        [0.020, 0.050, 0.130, 0.800],
    ]))
    risk_multiplier: tuple = (0.45, 1.0, 2.2)  # scales every worsening move, by risk type
    macro_sensitivity: float = 0.55  # worsening moves scale with exp(sensitivity * stress index)
    # --- repayment outcomes given (state, forgetful): early, on time, lag1, lag2, late 3..27, missed ---------
    outcome_probs: np.ndarray = field(default_factory=lambda: _a([
        [0.440, 0.522, 0.020, 0.009, 0.008, 0.001],
        [0.220, 0.580, 0.070, 0.045, 0.070, 0.015],
        [0.080, 0.460, 0.100, 0.080, 0.180, 0.100],
        [0.030, 0.250, 0.040, 0.040, 0.140, 0.500],
    ]))
    forgetful_lag1: float = 0.07  # added to P(1 day late) for forgetful customers, taken from early / on time
    forgetful_lag2: float = 0.03
    grace_short_lag_boost: float = 0.15  # per grace day, P(1-2 days late) grows by this share (it costs nothing)
    late_decay: float = 0.84  # P(lag = L | late) ∝ late_decay ** (L - 3), L = 3..27
    min_only_probs: tuple = (0.03, 0.15, 0.35, 0.40)  # revolving: pays only the minimum, by state
    util_probs: np.ndarray = field(default_factory=lambda: _a([  # spend bucket by state
        [0.32, 0.36, 0.20, 0.09, 0.03],
        [0.12, 0.26, 0.30, 0.22, 0.10],
        [0.06, 0.16, 0.26, 0.30, 0.22],
        [0.05, 0.10, 0.22, 0.30, 0.33],
    ]))
    convert_probs: tuple = (0.02, 0.07, 0.12, 0.06)  # statement converted into installments, by state
    convert_min_amount: float = 600.0  # statements below this cannot be converted
    convert_terms: tuple = (3, 6, 9, 12)
    cure_probs: tuple = (0.70, 0.40, 0.15, 0.03)  # in arrears: pays all arrears this month, by state
    parts_share: float = 0.12  # payments made in two parts (no signal: drawn independently of the state)
    # --- products --------------------------------------------------------------------------------------------
    due_days: tuple = (8, 9, 10)  # revolving: statement on the 1st, due on one of these days
    min_due_share: float = 0.10
    revolving_rate: float = 0.015  # monthly interest on a balance carried after a minimum-only payment
    loan_terms: tuple = (3, 6, 12)
    loan_fee_rate: float = 0.006  # per month of term, added to the principal
    grace_day_probs: tuple = (0.40, 0.20, 0.15, 0.25)  # 0..3 grace days
    penalty_rate: float = 0.0005  # 0.05 % a day on the overdue amount, charged beyond grace
    charge_off_dpd: int = 180
    # --- a living book: arrivals, closure, successive loans -------------------------------------------------
    closure_rate: float = 0.012  # monthly: a revolving line in good standing closed by its holder
    loan_gap_mean: float = 4.0  # months between repaying a cash loan and taking the next (geometric)
    max_loans: int = 15  # cash loans a customer takes at most (each is an account)
    second_product_delay: float = 8.0  # months after arriving before a two-product customer opens the second
    new_limit_share: float = 0.6  # a new line starts at this share of its band's limit
    ramp_months: int = 3  # a new line's spending ramps up over its first statements
    tenure_cap_months: int = 180  # the oldest line on the book the world starts with
    # --- baseline limit policy (sees only observed behaviour) ---------------------------------------------
    limit_by_band: tuple = (2_000.0, 4_000.0, 8_000.0, 15_000.0, 30_000.0)
    limit_review_every: int = 3  # months
    limit_increase: float = 0.20
    limit_decrease: float = 0.50
    limit_floor: float = 500.0
    limit_cap: float = 100_000.0
    # --- macro -----------------------------------------------------------------------------------------------
    seasonal_stress: tuple = (0.05, 0.25, 0.1, 0.0, -0.05, -0.05, 0.0, 0.0, -0.05, 0.0, 0.1, 0.2)  # Jan..Dec
    shock_level: float = 1.6  # stress index added from the shock month on
    start_month: str = "2023-01"  # the first as-of month; the warehouse's history comes before it

    def __post_init__(self) -> None:
        for name in ("risk_given_band", "base_transition", "outcome_probs", "util_probs"):
            rows = np.asarray(getattr(self, name)).sum(axis=-1)
            if not np.allclose(rows, 1.0, atol=1e-9):
                raise ValueError(f"WorldParams.{name}: each row must sum to 1, got {np.round(rows, 6)}")
        if not 0 <= self.penalty_rate < 0.01:
            raise ValueError(f"WorldParams.penalty_rate must be a daily rate in [0, 0.01), got {self.penalty_rate}")

    # --- derived tables, shared by the simulator and the filter ---------------------------------------------
    def transition(self, stress: float) -> np.ndarray:
        """P(s' | s, k) for a month with this stress index, shape (K, S, S)."""
        base = self.base_transition
        out = np.empty((len(RISK_TYPES), 4, 4))
        for k, mult in enumerate(self.risk_multiplier):
            m = mult * np.exp(self.macro_sensitivity * stress)
            p = base.copy()
            upper = np.triu(np.ones((4, 4), dtype=bool), 1)
            lower = np.tril(np.ones((4, 4), dtype=bool), -1)
            p[upper] *= m
            p[lower] /= np.sqrt(m)
            np.fill_diagonal(p, 0.0)
            worst = p.sum(axis=1).max()
            if worst > 0.98:
                p *= 0.98 / worst
            np.fill_diagonal(p, 1.0 - p.sum(axis=1))
            out[k] = p
        return out

    @cached_property
    def _outcomes(self) -> np.ndarray:
        table = np.empty((4, 2, 4, 6))
        for f in (0, 1):
            for g in range(4):
                p = self.outcome_probs.copy()
                if f:
                    _shift_to_short_lags(p, self.forgetful_lag1 + 0 * p[:, LAG1], self.forgetful_lag2 + 0 * p[:, LAG2])
                boost = self.grace_short_lag_boost * g
                _shift_to_short_lags(p, boost * p[:, LAG1], boost * p[:, LAG2])
                table[:, f, g] = p
        if (table < 0).any():
            raise ValueError("WorldParams: outcome probabilities went negative; lower the forgetful or grace boosts")
        return table

    @cached_property
    def initial_state(self) -> np.ndarray:
        """P(s_0 | k): each type's stationary distribution at the average seasonal stress, given that the account
        is not defaulting (no account starts in arrears). The book starts near its steady state
        instead of drifting into it for years: a model trained on early months would otherwise learn another
        world than the one it is tested on."""
        trans = self.transition(float(np.mean(self.seasonal_stress)))
        out = np.empty((len(RISK_TYPES), 4))
        for k in range(len(RISK_TYPES)):
            vals, vecs = np.linalg.eig(trans[k].T)
            v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
            v[3] = 0.0
            out[k] = v / v.sum()
        return out

    @cached_property
    def loan_again(self) -> float:
        """P(a customer takes another cash loan after repaying one): set so that a loan lane leaves the book at
        the rate a revolving line is closed, which keeps the product mix level."""
        cycle = float(np.mean(self.loan_terms)) + 1.0 + self.loan_gap_mean
        return float(np.clip(1.0 - self.closure_rate * cycle, 0.0, 1.0))

    @cached_property
    def lifetimes(self) -> np.ndarray:
        """Expected months a line stays on the book, by risk type: closure competes with charge-off (a Markov
        chain over the state and months in arrears, at the average seasonal stress)."""
        trans = self.transition(float(np.mean(self.seasonal_stress)))
        miss, cure = self.outcome_probs[:, MISSED], np.asarray(self.cure_probs)
        arrears = int(np.ceil(self.charge_off_dpd / 30))  # months in arrears before charge-off
        n = 4 * (arrears + 1)
        out = np.empty(len(RISK_TYPES))
        for k in range(len(RISK_TYPES)):
            q = np.zeros((n, n))
            for s in range(4):
                for t in range(4):
                    p = trans[k, s, t]
                    q[s * (arrears + 1), t * (arrears + 1) + 1] += p * miss[t]
                    q[s * (arrears + 1), t * (arrears + 1)] += p * (1 - miss[t]) * (1 - self.closure_rate)
                    for a in range(1, arrears + 1):
                        q[s * (arrears + 1) + a, t * (arrears + 1)] += p * cure[t]
                        if a < arrears:
                            q[s * (arrears + 1) + a, t * (arrears + 1) + a + 1] += p * (1 - cure[t])
            start = np.zeros(n)
            start[::arrears + 1] = self.initial_state[k]
            out[k] = start @ np.linalg.solve(np.eye(n) - q, np.ones(n))
        return out

    @cached_property
    def book_risk_given_band(self) -> np.ndarray:
        """P(risk type | income band) on the steady book: applicants' mix weighted by how long each type stays."""
        w = self.risk_given_band * self.lifetimes[None, :]
        return w / w.sum(axis=1, keepdims=True)

    @cached_property
    def book_band_probs(self) -> np.ndarray:
        """P(income band) on the steady book."""
        w = np.asarray(self.income_band_probs) * (self.risk_given_band @ self.lifetimes)
        return w / w.sum()

    @cached_property
    def holdings_probs(self) -> np.ndarray:
        """P(revolving and cash loan, revolving only, cash loan only) of a customer."""
        one = 1 - self.two_product_share
        return np.array([self.two_product_share, one * (1 - self.installment_only_share),
                         one * self.installment_only_share])

    @cached_property
    def accounts_per_customer(self) -> float:
        """Open accounts per customer on the steady book: a line, and a cash loan while one is running."""
        both, rev_only, loan_only = self.holdings_probs
        cycle = float(np.mean(self.loan_terms)) + 1.0 + self.loan_gap_mean
        return float(both + rev_only + (both + loan_only) * np.mean(self.loan_terms) / cycle)

    @cached_property
    def arrival_rate(self) -> float:
        """New customers a month per customer on the steady book: what leaves it, on average."""
        w = self.book_band_probs @ self.book_risk_given_band  # P(risk type) on the book
        return float(w @ (1.0 / self.lifetimes))

    def outcome_table(self) -> np.ndarray:
        """P(outcome | s, f, grace days), shape (S, F=2, G=4, 6)."""
        return self._outcomes

    def late_lag_pmf(self) -> np.ndarray:
        """P(lag = L | late) for L = LATE_MIN..LATE_MAX."""
        w = self.late_decay ** np.arange(LATE_MAX - LATE_MIN + 1)
        return w / w.sum()

    def late_survival(self, days: np.ndarray) -> np.ndarray:
        """P(lag > days | late): the chance a late bill is still unpaid `days` after its due date."""
        pmf = self.late_lag_pmf()
        tail = np.concatenate([np.cumsum(pmf[::-1])[::-1], [0.0]])  # tail[i] = P(L >= LATE_MIN + i)
        idx = np.clip(np.asarray(days) + 1 - LATE_MIN, 0, len(pmf))
        return tail[idx]


def _shift_to_short_lags(p: np.ndarray, add1: np.ndarray, add2: np.ndarray) -> None:
    """Move probability onto 1- and 2-day lags, taken from 'early' and 'on time' in proportion (in place)."""
    p[:, LAG1] += add1
    p[:, LAG2] += add2
    share = p[:, [EARLY, ON_TIME]] / p[:, [EARLY, ON_TIME]].sum(axis=1, keepdims=True)
    p[:, [EARLY, ON_TIME]] -= (add1 + add2)[:, None] * share


DEFAULT_PARAMS = WorldParams()
