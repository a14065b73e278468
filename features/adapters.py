"""Adapters: coarse, bureau-style monthly data onto the same data contract as day-exact histories.

A bureau reports, per account and month, a status code, the statement and paid amounts and the limit. It does
not say on which day anything happened. This module turns such rows into accounts, bills, payments and limits
that pass :func:`features.contract.validate`, so the rest of the pipeline needs no second code path:

* every status code's meaning is declared once (``MonthlyConfig.codes``): months past due (an integer; the
  largest reads "that many or more"), or a word of ``MEANINGS``: current, paid in full, minimum paid, no
  use, unknown, closed, charged off. A digit may mean anything (a file whose ``0`` is "revolving, minimum
  paid");
* one bill per month, of the statement as reported: statement_date = the 1st of the month, due_date =
  ``due_day`` of the same month. Months coded unknown, closed or charged off have none, and a no-use month
  only where it reports a statement amount. A credit balance (a negative statement) is a zero bill, and the
  excess is recorded as an overpayment of it on the statement date, so the contract's amounts stay
  non-negative;
* ``min_due``: for installment accounts the whole bill; else ``max(min_due_floor, min_due_rate *
  amount_due)`` capped at the bill, lowered to the paid amount where the status shows that amount met it
  (a *minimum paid* month, or any month with nothing past due);
* status ``k`` months past due at month *m* means the bills of months *m-k+1 .. m* are unpaid at the end of
  *m*; a month with nothing past due settles them. A bill is therefore settled in the first month whose
  status no longer covers it: in its own month by the amount reported paid, kept as given (part payments
  and overpayments included; imputed only where none is reported: the whole bill on a paid-in-full month,
  else the minimum), and in a later month (arrears cleared) by its minimum, imputed, on that month's due
  date. Imputed payments carry ``imputed=True``. Bills still covered by the last reported status are never
  paid;
* months missing between an account's first and last report, and unknown and charged-off months, settle
  nothing: arrears open before them are paid in the first month after whose status no longer covers them;
* accounts: ``date_precision='month'``, ``grace_days=0``, ``open_date`` = first reported month,
  ``close_date`` / ``charge_off_date`` = the last day of the first month coded closed / charged off (no
  month after it may report a bill), ``customer_id`` and ``product`` from the data when given (else the
  account id and ``config.product``);
* limits: one row per change of ``credit_limit``, effective on the 1st of the month it is first reported.

The derived status is exact when the reported sequence is possible (a status rises by at most one a
month); otherwise it never exceeds the reported one. A zero bill is settled by definition, so a past-due
month with a zero bill cannot show its arrears.

Features that need day precision (1- or 2-day lags, late within grace) must be NaN for accounts with
``date_precision == 'month'``: the payment days here are placed, not observed, and are never to be
read as evidence of a 1-day lag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.contract import (
    PRODUCTS,
    Column,
    ContractError,
    Problem,
    Tables,
    TableSchema,
    convert_frame,
    missing_columns,
    row_problem,
    validate,
)

__all__ = ["DEFAULT_CODES", "MEANINGS", "MONTHLY", "MonthlyConfig", "from_monthly"]

MONTHLY = TableSchema(
    "monthly",
    (
        Column("account_id", "id"),
        Column("month", "date"),
        Column("status", "str"),
        Column("bill_amount", "float", nullable=True),
        Column("paid_amount", "float", nullable=True),
        Column("credit_limit", "float", nullable=True),
        Column("customer_id", "id", required=False, nullable=True),
        Column("product", "str", required=False, nullable=True),
    ),
    key="account_id",
    sort_by=("account_id", "month"),
)

_GAP = np.iinfo(np.int64).max  # status of a month with no information: covers every open bill

# What a status code can mean: months past due (an integer 0..99), or one of these words.
MEANINGS = {
    "current": "nothing past due, nothing more said",
    "paid_in_full": "the bill was paid in full by its due date",
    "minimum_paid": "revolving: the minimum was paid by the due date (the paid amount reveals the minimum)",
    "no_use": "no spending: a bill only where the month reports a statement amount",
    "unknown": "nothing known: no bill, nothing settled",
    "closed": "the account closed this month: no bill, what was past due is settled",
    "charged_off": "the account was charged off this month: no bill, what was past due stays unpaid",
}
DEFAULT_CODES = {**{str(k): k for k in range(7)}, "C": "paid_in_full", "R": "minimum_paid", "N": "no_use",
                 "X": "unknown", "L": "closed", "W": "charged_off"}
_NO_BILL = ("unknown", "closed", "charged_off")  # months that never carry a bill
_EXITS = ("closed", "charged_off")


@dataclass(frozen=True)
class MonthlyConfig:
    """How a monthly source's status codes and amounts map onto the contract.

    codes: every status code and its meaning, declared once: an integer (months past due; the largest one
    reads "that many or more") or a word of MEANINGS. A digit may mean anything: {"0": "minimum_paid"} for a
    file whose 0 is "revolving, minimum paid"."""

    codes: Mapping[str, int | str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    due_day: int = 25
    min_due_rate: float = 0.05
    min_due_floor: float = 0.0
    product: str = "revolving"

    def __post_init__(self) -> None:
        if not self.codes or any(not isinstance(c, str) or not c.strip() for c in self.codes):
            raise ValueError("MonthlyConfig: status codes must be non-empty strings")
        for code, meaning in self.codes.items():
            number = isinstance(meaning, int) and not isinstance(meaning, bool)
            if not (number and 0 <= meaning <= 99) and meaning not in MEANINGS:
                raise ValueError(f"MonthlyConfig: code {code!r} means {meaning!r}; a meaning is months past due "
                                 f"(0..99) or one of {', '.join(MEANINGS)}")
        if self.max_months_past_due < 1:
            raise ValueError("MonthlyConfig: no code means a month or more past due")
        if not 1 <= self.due_day <= 28:
            raise ValueError("MonthlyConfig.due_day must be in 1..28 (a day every month has)")
        if not 0 <= self.min_due_rate <= 1 or not self.min_due_floor >= 0:
            raise ValueError("MonthlyConfig: min_due_rate must be in 0..1 and min_due_floor >= 0")
        if self.product not in PRODUCTS:
            raise ValueError(f"MonthlyConfig.product must be one of {PRODUCTS}")

    @property
    def max_months_past_due(self) -> int:
        """The largest months-past-due code: it reads "that many or more"."""
        return max((m for m in self.codes.values() if isinstance(m, int)), default=0)

    def meaning(self, codes) -> np.ndarray:
        """Each code's meaning as a word: 'past_due' for a month or more, 'current' for 0 months."""
        words = {c: ("past_due" if m else "current") if isinstance(m, int) else m for c, m in self.codes.items()}
        return pd.Series(codes).map(words).to_numpy(dtype=object)

    @property
    def months(self) -> dict[str, int]:
        """Every code's months past due for the settlement of bills: a word counts as 0, except those that
        settle nothing (unknown, charged off), which cover every open bill."""
        return {c: m if isinstance(m, int) else _GAP if m in ("unknown", "charged_off") else 0
                for c, m in self.codes.items()}


def from_monthly(monthly: pd.DataFrame, config: MonthlyConfig | None = None) -> Tables:
    """Map monthly bureau-style rows onto validated contract tables (payments imputed, month precision)."""
    config = config or MonthlyConfig()
    rows = _checked(monthly, config)
    month = rows["month"].to_numpy().astype("datetime64[M]")
    billed = _billed(rows, config)
    bills = _bills(rows, month, billed, config)
    settle = _settle_month(rows, month, billed, config)
    tables = {
        "accounts": _accounts(rows, config),
        "bills": bills,
        "payments": _payments(rows[billed].reset_index(drop=True), bills, settle, config),
        "limits": _limits(rows),
    }
    return validate(tables, sources={name: "monthly data" for name in tables})


def _billed(rows: pd.DataFrame, config: MonthlyConfig) -> np.ndarray:
    """The months that carry a bill: all but unknown, closed and charged-off ones, and no-use months that
    report no statement amount (a no-use month with a balance still gets its statement)."""
    meaning = config.meaning(rows["status"])
    amount = rows["bill_amount"].to_numpy()
    no_statement = (meaning == "no_use") & ~(np.isfinite(amount) & (amount != 0))
    return ~np.isin(meaning, _NO_BILL) & ~no_statement


# ------------------------------------------------------------------------------------------- checking


def _checked(monthly: pd.DataFrame, config: MonthlyConfig) -> pd.DataFrame:
    """Converted, checked and sorted input rows, or a ContractError naming the offending ones."""
    missing = missing_columns(monthly, MONTHLY)
    if missing:
        raise ContractError([missing])
    frame = monthly.copy()
    if pd.api.types.is_numeric_dtype(frame["status"].dtype):  # 0, 1.0 -> '0', '1'
        frame["status"] = frame["status"].astype("Int64").astype("str")
    frame["status"] = frame["status"].astype("str").str.strip()
    rows, problems = convert_frame(frame, MONTHLY)
    if problems:
        raise ContractError(problems)
    if not len(rows):
        raise ContractError([Problem("monthly", "", "holds no row", hint="Give at least one account's month.")])
    rows["month"] = rows["month"].to_numpy().astype("datetime64[M]").astype("datetime64[s]")
    rows = rows.sort_values(["account_id", "month"], kind="stable", ignore_index=True)
    known = rows["status"].isin(list(config.codes)).to_numpy()
    meaning = config.meaning(rows["status"])
    owes = known & ~np.isin(meaning, (*_NO_BILL, "no_use"))
    bill = rows["bill_amount"].to_numpy()
    found = [
        row_problem(rows, ~known, MONTHLY, "status", "is not a known status code",
                    f"Known codes: {', '.join(config.codes)}; declare the others' meanings in the config's codes."),
        row_problem(rows, rows.duplicated(["account_id", "month"], keep=False), MONTHLY, "month",
                    "is reported twice for the same account", "Keep one row per account and month."),
        row_problem(rows, owes & ~np.isfinite(bill), MONTHLY, "bill_amount",
                    "is missing or not finite on a month with a bill",
                    "Every month other than no use, unknown, closed or charged off has a statement: fix the "
                    "amount, or code the month as no use."),
        row_problem(rows, _after_exit(rows, meaning) & known & _billed(rows, config), MONTHLY, "status",
                    "reports a bill after the account closed or was charged off",
                    "An account that left the book gets no new statement: fix the codes, or the closing month."),
        *(row_problem(rows, rows[c].notna() & ~(rows[c] >= 0) | np.isinf(rows[c]), MONTHLY, c,
                      "is negative or not finite", "Amounts paid and limits are non-negative numbers: fix the extract.")
          for c in ("paid_amount", "credit_limit")),
    ]
    problems = [p for p in found if p is not None]
    if problems:
        raise ContractError(problems)
    return rows


def _after_exit(rows: pd.DataFrame, meaning: np.ndarray) -> np.ndarray:
    """Rows of a month after the account's first closed or charged-off month."""
    exited = pd.Series(np.isin(meaning, _EXITS)).groupby(rows["account_id"].to_numpy()).cummax().to_numpy()
    return exited & ~np.isin(meaning, _EXITS)


# ---------------------------------------------------------------------------------------------- bills


def _due_dates(month: np.ndarray, config: MonthlyConfig) -> np.ndarray:
    start = month.astype("datetime64[D]")
    return (start + np.timedelta64(config.due_day - 1, "D")).astype("datetime64[s]")


def _products(rows: pd.DataFrame, config: MonthlyConfig) -> pd.Series:
    return rows["product"].fillna(config.product).astype("str")


def _bills(rows: pd.DataFrame, month: np.ndarray, billed: np.ndarray, config: MonthlyConfig) -> pd.DataFrame:
    """One bill per billed month, of the statement as reported (a credit balance: a zero bill). min_due: the
    whole bill for installments; else the paid amount where the month's status shows it was the minimum or
    that the bill was met with it, capped by the rate rule."""
    statement = rows["bill_amount"].to_numpy()[billed]
    amount = np.maximum(statement, 0.0)
    paid = rows["paid_amount"].to_numpy()[billed]
    meaning = config.meaning(rows["status"].to_numpy()[billed])
    min_due = np.minimum(amount, np.maximum(config.min_due_floor, config.min_due_rate * amount))
    revealed = (meaning == "minimum_paid") & (paid > 0) & (paid <= amount)
    min_due = np.where(revealed, paid, min_due)
    met = (meaning != "past_due") & (paid < min_due)  # nothing past due: what was paid met the minimum
    min_due = np.where(met, paid, min_due)
    min_due = np.where(_products(rows, config).to_numpy()[billed] == "installment", amount, min_due)
    return pd.DataFrame({
        "account_id": rows["account_id"].to_numpy()[billed],
        "bill_id": np.arange(1, int(billed.sum()) + 1, dtype="int64"),
        "statement_date": month[billed].astype("datetime64[s]"),
        "due_date": _due_dates(month[billed], config),
        "amount_due": amount,
        "min_due": min_due,
    })


def _settle_month(
    rows: pd.DataFrame, month: np.ndarray, billed: np.ndarray, config: MonthlyConfig
) -> np.ndarray:
    """For each bill, the month it is settled in (NaT: never), from the reported statuses.

    Works on a dense per-account month grid (gaps covering every open bill) and advances all open bills
    one month at a time: the loop runs over months of the longest delinquency, never over rows.
    """
    index = month.astype("int64")
    account = rows["account_id"].to_numpy()
    first_row = np.r_[True, account[1:] != account[:-1]]
    starts = np.flatnonzero(first_row)
    lengths = np.diff(np.r_[starts, len(rows)])
    first_month = index[starts]
    span = index[np.r_[starts[1:] - 1, len(rows) - 1]] - first_month + 1
    offset = np.r_[0, np.cumsum(span)[:-1]]
    grid_status = np.full(int(span.sum()), _GAP, dtype="int64")
    row_account = np.repeat(np.arange(len(starts)), lengths)
    grid_pos = offset[row_account] + index - first_month[row_account]
    grid_status[grid_pos] = rows["status"].map(config.months).to_numpy(dtype="int64")
    grid_end = (offset + span)[row_account]  # one past the account's last grid month

    position = grid_pos[billed]
    end = grid_end[billed]
    settled = np.full(len(position), -1, dtype="int64")
    open_bills = np.arange(len(position))
    months_on = 0
    while open_bills.size:
        at = position[open_bills] + months_on
        inside = at < end[open_bills]
        open_bills, at = open_bills[inside], at[inside]
        covered = grid_status[at] >= min(months_on + 1, config.max_months_past_due)
        settled[open_bills[~covered]] = months_on
        open_bills = open_bills[covered]
        months_on += 1
    settle = index[billed] + settled
    return np.where(settled >= 0, settle, np.iinfo(np.int64).min).astype("datetime64[M]")


def _payments(
    billed_rows: pd.DataFrame, bills: pd.DataFrame, settle: np.ndarray, config: MonthlyConfig
) -> pd.DataFrame:
    """The payments the reports show. A bill settled in its own month is paid on its due date with the amount
    reported, kept as given (part payments and overpayments included), plus an imputed top-up where that
    falls short of a minimum the status says was met (an installment paid partly the month before); where
    none is reported, the payment is imputed: the whole bill on a paid-in-full month, else the minimum. A
    bill settled in a later month (arrears cleared) gets its minimum, imputed, on that month's due date. A
    credit balance (negative statement) is an overpayment of its zero bill, on the statement date."""
    settled = ~np.isnat(settle)
    meaning = config.meaning(billed_rows["status"].to_numpy())
    amount, min_due = bills["amount_due"].to_numpy(), bills["min_due"].to_numpy()
    on_time = settled & (settle == bills["statement_date"].to_numpy().astype("datetime64[M]"))
    reported = billed_rows["paid_amount"].to_numpy()
    given = on_time & np.isfinite(reported) & (reported > 0)
    imputed = np.where(on_time & (meaning == "paid_in_full"), amount, min_due)
    imputed = np.where(given, np.maximum(min_due - np.where(given, reported, 0.0), 0.0), imputed)
    credit = -np.minimum(billed_rows["bill_amount"].to_numpy(), 0.0)
    due_date = np.where(settled, _due_dates(np.where(settled, settle, np.datetime64(0, "M")), config),
                        np.datetime64("NaT"))
    parts = [(given, due_date, np.where(given, reported, 0.0), False),
             (settled & (imputed > 0), due_date, imputed, True),
             (credit > 0, bills["statement_date"].to_numpy(), credit, False)]
    frame = pd.DataFrame({
        "account_id": np.concatenate([bills["account_id"].to_numpy()[m] for m, *_ in parts]),
        "bill_id": np.concatenate([bills["bill_id"].to_numpy()[m] for m, *_ in parts]),
        "payment_date": np.concatenate([day[m] for m, day, *_ in parts]).astype("datetime64[s]"),
        "amount": np.concatenate([value[m] for m, _, value, _ in parts]),
        "imputed": np.concatenate([np.full(int(m.sum()), flag) for m, *_, flag in parts]),
    })
    return frame.sort_values(["account_id", "payment_date", "bill_id", "imputed"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------- accounts and limits


def _accounts(rows: pd.DataFrame, config: MonthlyConfig) -> pd.DataFrame:
    """Static attributes per account: first reported month, and customer/product when the source has them."""
    first = rows.groupby("account_id", sort=True).agg(
        open_date=("month", "min"), customer_id=("customer_id", "first"), product=("product", "first")
    )
    ids = first.index.to_numpy()
    customer = first["customer_id"].astype("Int64").fillna(pd.Series(ids, index=first.index))
    meaning = config.meaning(rows["status"])
    exits = {}
    for word, column in (("closed", "close_date"), ("charged_off", "charge_off_date")):
        at = meaning == word  # on the last day of the first month so coded
        day = rows.loc[at].groupby("account_id")["month"].min().reindex(ids).to_numpy().astype("datetime64[M]")
        exits[column] = ((day + 1).astype("datetime64[D]") - 1).astype("datetime64[s]")
    return pd.DataFrame({
        "account_id": ids,
        "customer_id": customer.to_numpy(dtype="int64"),
        "product": first["product"].fillna(config.product).astype("str").to_numpy(),
        "open_date": first["open_date"].to_numpy(),
        "grace_days": np.zeros(len(ids), dtype="int64"),
        "date_precision": np.full(len(ids), "month"),
        **exits,
    })


def _limits(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per change of the reported limit, effective on the 1st of the month it appears."""
    known = rows[rows["credit_limit"].notna()]
    account, limit = known["account_id"].to_numpy(), known["credit_limit"].to_numpy()
    change = np.r_[True, (account[1:] != account[:-1]) | (limit[1:] != limit[:-1])]
    return pd.DataFrame({
        "account_id": account[change],
        "effective_date": known["month"].to_numpy()[change],
        "credit_limit": limit[change],
    })

