"""Adapters: coarse, bureau-style monthly data onto the same data contract as day-exact histories.

A bureau reports, per account and month, a status code (months past due, or a special code), the bill
and paid amounts and the limit. It does not say on which day anything happened. This module turns such
rows into accounts, bills, payments and limits that pass :func:`features.contract.validate`, so the rest of
the pipeline needs no second code path:

* one bill per reported month, except months coded *no use* (default ``N``): statement_date = the 1st of
  the month, due_date = ``due_day`` of the same month; ``amount_due`` = ``bill_amount``;
* ``min_due``: for installment accounts the whole bill; on a *minimum paid* month (default ``R``) the
  paid amount, which the code reveals to be the minimum; otherwise ``max(min_due_floor,
  min_due_rate * amount_due)``, capped at the bill;
* status ``k`` in 1..``max_months_past_due`` at month *m* means the bills of months *m-k+1 .. m* are
  unpaid at the end of *m* (``max_months_past_due`` means "k or more": older unpaid bills stay unpaid);
  ``0`` and the special codes mean nothing is past due at the end of *m*. A bill is therefore settled
  in the first month whose status no longer covers it, by one payment on that month's due date: on its
  own due date when the status says current, in the month the arrears are cleared otherwise. Bills still
  covered by the last reported status are never paid. Payment amounts: the full bill on a *paid in full*
  month (default ``C``), the minimum on a *minimum paid* month, the paid amount (kept between min_due and
  the bill) on a ``0`` month, and min_due for arrears cleared later. Every payment has ``imputed=True``;
* months missing between an account's first and last report (and months coded *unknown*, default ``X``)
  carry no bill and settle nothing: arrears open before such a gap are paid in the first month after it
  whose status no longer covers them;
* accounts: ``date_precision='month'``, ``grace_days=0``, ``open_date`` = first reported month,
  ``customer_id`` and ``product`` from the data when given (else the account id and ``config.product``);
* limits: one row per change of ``credit_limit``, effective on the 1st of the month it is first reported.

The derived status is exact when the reported sequence is possible (a status rises by at most one a
month); otherwise it never exceeds the reported one. A zero bill is settled by definition, so a past-due
month with a zero bill cannot show its arrears.

Features that need day precision (1- or 2-day lags, late within grace) must be NaN for accounts with
``date_precision == 'month'``: the payment days here are placed, not observed, and are never to be
read as evidence of a 1-day lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import (
    PRODUCTS,
    Column,
    ContractError,
    Tables,
    TableSchema,
    convert_frame,
    missing_columns,
    row_problem,
    validate,
)

__all__ = ["MONTHLY", "MonthlyConfig", "from_monthly"]

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


@dataclass(frozen=True)
class MonthlyConfig:
    """How a monthly source's status codes and amounts map onto the contract."""

    no_use: tuple[str, ...] = ("N",)
    paid_in_full: tuple[str, ...] = ("C",)
    minimum_paid: tuple[str, ...] = ("R",)
    unknown: tuple[str, ...] = ("X",)
    max_months_past_due: int = 6
    due_day: int = 25
    min_due_rate: float = 0.05
    min_due_floor: float = 0.0
    product: str = "revolving"

    def __post_init__(self) -> None:
        special = [*self.no_use, *self.paid_in_full, *self.minimum_paid, *self.unknown]
        if any(not isinstance(c, str) or not c.strip() for c in special):
            raise ValueError("MonthlyConfig: special status codes must be non-empty strings (use tuples)")
        if len(set(special)) != len(special):
            raise ValueError(f"MonthlyConfig: a status code has two meanings: {special}")
        if any(c.isdigit() for c in special):
            raise ValueError("MonthlyConfig: digits are months past due and cannot be special codes")
        if not 1 <= self.max_months_past_due <= 99:
            raise ValueError("MonthlyConfig.max_months_past_due must be in 1..99")
        if not 1 <= self.due_day <= 28:
            raise ValueError("MonthlyConfig.due_day must be in 1..28 (a day every month has)")
        if not 0 <= self.min_due_rate <= 1 or not self.min_due_floor >= 0:
            raise ValueError("MonthlyConfig: min_due_rate must be in 0..1 and min_due_floor >= 0")
        if self.product not in PRODUCTS:
            raise ValueError(f"MonthlyConfig.product must be one of {PRODUCTS}")

    @property
    def codes(self) -> dict[str, int]:
        """Every known code and its months past due; special codes count as 0, unknown as a gap."""
        codes = {str(k): k for k in range(self.max_months_past_due + 1)}
        codes.update({c: 0 for c in (*self.no_use, *self.paid_in_full, *self.minimum_paid)})
        codes.update({c: _GAP for c in self.unknown})
        return codes


def from_monthly(monthly: pd.DataFrame, config: MonthlyConfig | None = None) -> Tables:
    """Map monthly bureau-style rows onto validated contract tables (payments imputed, month precision)."""
    config = config or MonthlyConfig()
    rows = _checked(monthly, config)
    month = rows["month"].to_numpy().astype("datetime64[M]")
    billed = ~rows["status"].isin((*config.no_use, *config.unknown)).to_numpy()
    bills = _bills(rows, month, billed, config)
    settle = _settle_month(rows, month, billed, config)
    tables = {
        "accounts": _accounts(rows, config),
        "bills": bills,
        "payments": _payments(rows[billed].reset_index(drop=True), bills, settle, config),
        "limits": _limits(rows),
    }
    return validate(tables, sources={name: "monthly data" for name in tables})


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
    rows["month"] = rows["month"].to_numpy().astype("datetime64[M]").astype("datetime64[s]")
    rows = rows.sort_values(["account_id", "month"], kind="stable", ignore_index=True)
    billed = ~rows["status"].isin((*config.no_use, *config.unknown)).to_numpy()
    bill = rows["bill_amount"].to_numpy()
    found = [
        row_problem(rows, ~rows["status"].isin(list(config.codes)), MONTHLY, "status",
                    "is not a known status code",
                    f"Known codes: 0..{config.max_months_past_due} months past due and "
                    f"{', '.join(c for c in config.codes if not c.isdigit())}; "
                    "map others via MonthlyConfig."),
        row_problem(rows, rows.duplicated(["account_id", "month"], keep=False), MONTHLY, "month",
                    "is reported twice for the same account", "Keep one row per account and month."),
        row_problem(rows, billed & ~(np.isfinite(bill) & (bill >= 0)), MONTHLY, "bill_amount",
                    "is missing, negative or not finite on a month with a bill",
                    "Every month other than 'no use' has a bill: fix the amount, "
                    "or code the month as no use."),
        *(row_problem(rows, rows[c].notna() & ~(rows[c] >= 0) | np.isinf(rows[c]), MONTHLY, c,
                      "is negative or not finite", "Amounts are non-negative numbers: fix the extract.")
          for c in ("paid_amount", "credit_limit")),
    ]
    problems = [p for p in found if p is not None]
    if problems:
        raise ContractError(problems)
    return rows


# ---------------------------------------------------------------------------------------------- bills


def _due_dates(month: np.ndarray, config: MonthlyConfig) -> np.ndarray:
    start = month.astype("datetime64[D]")
    return (start + np.timedelta64(config.due_day - 1, "D")).astype("datetime64[s]")


def _products(rows: pd.DataFrame, config: MonthlyConfig) -> pd.Series:
    return rows["product"].fillna(config.product).astype("str")


def _bills(rows: pd.DataFrame, month: np.ndarray, billed: np.ndarray, config: MonthlyConfig) -> pd.DataFrame:
    """One bill per billed month; min_due from the installment / minimum-paid / rate rule."""
    amount = rows["bill_amount"].to_numpy()[billed]
    paid = rows["paid_amount"].to_numpy()[billed]
    status = rows["status"].to_numpy()[billed]
    min_due = np.minimum(amount, np.maximum(config.min_due_floor, config.min_due_rate * amount))
    revealed = np.isin(status, config.minimum_paid) & (paid > 0) & (paid <= amount)
    min_due = np.where(revealed, paid, min_due)
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
    grid_status[grid_pos] = rows["status"].map(config.codes).to_numpy(dtype="int64")
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
    """One imputed payment per settled bill, on the due date of the month it is settled in."""
    paid = ~np.isnat(settle)
    status = billed_rows["status"].to_numpy()
    amount, min_due = bills["amount_due"].to_numpy(), bills["min_due"].to_numpy()
    on_time = paid & (settle == bills["statement_date"].to_numpy().astype("datetime64[M]"))
    reported = billed_rows["paid_amount"].fillna(0.0).to_numpy()
    value = np.where(on_time, np.clip(reported, min_due, amount), min_due)
    value = np.where(on_time & np.isin(status, config.paid_in_full), amount, value)
    value = np.where(on_time & np.isin(status, config.minimum_paid), min_due, value)
    return pd.DataFrame({
        "account_id": bills["account_id"].to_numpy()[paid],
        "bill_id": bills["bill_id"].to_numpy()[paid],
        "payment_date": _due_dates(settle[paid], config),
        "amount": value[paid],
        "imputed": np.ones(int(paid.sum()), dtype=bool),
    })


# ---------------------------------------------------------------------------------- accounts and limits


def _accounts(rows: pd.DataFrame, config: MonthlyConfig) -> pd.DataFrame:
    """Static attributes per account: first reported month, and customer/product when the source has them."""
    first = rows.groupby("account_id", sort=True).agg(
        open_date=("month", "min"), customer_id=("customer_id", "first"), product=("product", "first")
    )
    ids = first.index.to_numpy()
    customer = first["customer_id"].astype("Int64").fillna(pd.Series(ids, index=first.index))
    return pd.DataFrame({
        "account_id": ids,
        "customer_id": customer.to_numpy(dtype="int64"),
        "product": first["product"].fillna(config.product).astype("str").to_numpy(),
        "open_date": first["open_date"].to_numpy(),
        "grace_days": np.zeros(len(ids), dtype="int64"),
        "date_precision": np.full(len(ids), "month"),
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

