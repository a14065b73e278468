"""Monthly bureau-style data onto the contract: the imputed history must tell the reported story."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.adapters import MonthlyConfig, from_monthly
from features.contract import ContractError, Tables, validate

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAP = MonthlyConfig().max_months_past_due


def monthly(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["account_id", "month", "status", "bill_amount", "paid_amount",
                                       "credit_limit"])


def months_past_due(tables: Tables, account: int, month: str) -> int:
    """Reference DPD in months at the end of ``month``, read back from bills and payments row by row."""
    end = pd.Timestamp(month) + pd.offsets.MonthEnd(0)
    bills = tables.bills[(tables.bills["account_id"] == account) & (tables.bills["due_date"] <= end)]
    payments = tables.payments[tables.payments["payment_date"] <= end]
    oldest = None
    for bill in bills.itertuples():
        paid = payments.loc[payments["bill_id"] == bill.bill_id, "amount"].sum()
        if paid < bill.min_due and (oldest is None or bill.due_date < oldest):
            oldest = bill.due_date
    if oldest is None:
        return 0
    return (end.year - oldest.year) * 12 + end.month - oldest.month + 1


# ------------------------------------------------------------------------------------------- examples


def test_a_delinquency_and_its_cure_are_placed_in_the_right_months():
    data = monthly([
        (1, "2024-01", "C", 100.0, 100.0, 1000.0),
        (1, "2024-02", "1", 50.0, 0.0, 1000.0),
        (1, "2024-03", "2", 60.0, 0.0, 2000.0),
        (1, "2024-04", "0", 70.0, 200.0, 2000.0),
    ])
    tables = from_monthly(data)
    months = ("2024-01", "2024-02", "2024-03", "2024-04")
    assert [months_past_due(tables, 1, m) for m in months] == [0, 1, 2, 0]
    payments = tables.payments
    assert payments["payment_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-25"] + ["2024-04-25"] * 3
    assert payments["amount"].tolist()[0] == 100.0  # 'C': paid in full on the due date
    assert payments["imputed"].all()
    assert tables.limits["effective_date"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-03"]
    account = tables.accounts.iloc[0]
    assert account["date_precision"] == "month" and account["grace_days"] == 0
    assert account["open_date"] == pd.Timestamp("2024-01-01") and account["product"] == "revolving"


def test_no_use_months_have_no_bill_and_statement_and_due_dates_follow_the_config():
    data = monthly([(7, "2024-01", "N", 0.0, 0.0, 500.0), (7, "2024-02", "0", 80.0, 80.0, 500.0)])
    tables = from_monthly(data, MonthlyConfig(due_day=10))
    bills = tables.bills
    assert len(bills) == 1
    assert bills["statement_date"].iloc[0] == pd.Timestamp("2024-02-01")
    assert bills["due_date"].iloc[0] == pd.Timestamp("2024-02-10")
    assert tables.payments["payment_date"].iloc[0] == pd.Timestamp("2024-02-10")


def test_minimum_paid_months_reveal_the_minimum_and_installments_owe_the_whole_bill():
    data = monthly([(1, "2024-01", "R", 200.0, 15.0, 900.0), (1, "2024-02", "0", 200.0, 200.0, 900.0)])
    bills = from_monthly(data, MonthlyConfig(min_due_rate=0.1)).bills
    assert bills["min_due"].tolist() == [15.0, 20.0]
    data["product"] = "installment"
    bills = from_monthly(data).bills
    assert bills["min_due"].tolist() == [200.0, 200.0]


def test_unpaid_bills_at_the_last_report_get_no_payment_and_six_means_six_or_more():
    statuses = ["1", "2", "3", "4", "5", "6", "6", "6"]
    months = pd.period_range("2023-01", periods=len(statuses), freq="M").strftime("%Y-%m")
    rows = [(3, m, s, 10.0, 0.0, 100.0) for m, s in zip(months, statuses, strict=True)]
    tables = from_monthly(monthly(rows))
    assert len(tables.payments) == 0
    assert months_past_due(tables, 3, months[-1]) == 8


def test_month_may_be_a_date_status_may_be_numeric_and_customer_product_pass_through():
    data = pd.DataFrame({
        "account_id": [5, 5], "month": pd.to_datetime(["2024-03-15", "2024-04-01"]), "status": [0, 1],
        "bill_amount": [10.0, 20.0], "paid_amount": [10.0, None], "credit_limit": [None, 300.0],
        "customer_id": [42, 42], "product": ["installment", "installment"],
    })
    tables = from_monthly(data)
    assert tables.accounts[["customer_id", "product"]].iloc[0].tolist() == [42, "installment"]
    assert tables.bills["statement_date"].dt.day.tolist() == [1, 1]
    assert len(tables.limits) == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.assign(status=["C", "Z", "0"]),
         "monthly.status is not a known status code in 1 of 3 rows"),
        (lambda d: d.assign(month=["2024-01", "2024-01", "2024-03"]), "monthly.month is reported twice"),
        (lambda d: d.assign(bill_amount=[1.0, -2.0, 3.0]), "monthly.bill_amount is missing, negative"),
        (lambda d: d.assign(month=["2024-01", "someday", "2024-03"]), "monthly.month is not a calendar date"),
        (lambda d: d.drop(columns=["status"]), "monthly.status is missing"),
    ],
)
def test_bad_monthly_rows_are_refused_naming_them(change, expected):
    data = monthly([(9, "2024-01", "C", 1.0, 1.0, 10.0), (9, "2024-02", "0", 2.0, 2.0, 10.0),
                    (9, "2024-03", "0", 3.0, 3.0, 10.0)])
    with pytest.raises(ContractError) as caught:
        from_monthly(change(data))
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "account_id 9" in str(caught.value) or "missing" in expected


@pytest.mark.parametrize(
    "config",
    [
        {"no_use": ("N",), "paid_in_full": ("N",)},
        {"minimum_paid": ("1",)},
        {"due_day": 31},
        {"min_due_rate": 1.5},
        {"product": "mortgage"},
        {"no_use": ("",)},
    ],
)
def test_config_refuses_ambiguous_or_impossible_settings(config):
    with pytest.raises(ValueError, match="MonthlyConfig"):
        MonthlyConfig(**config)


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        MonthlyConfig().due_day = 3  # type: ignore[misc]


# ------------------------------------------------------------------------------------- property tests


@st.composite
def possible_histories(draw) -> tuple[pd.DataFrame, list[tuple[int, str, int]]]:
    """Histories a bureau could really report: a status rises by at most one month at a time."""
    rows, reported = [], []
    for account in draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=4, unique=True)):
        start = pd.Period("2020-01", freq="M") + draw(st.integers(0, 24))
        status = 0
        for i in range(draw(st.integers(1, 14))):
            status = draw(st.integers(0, min(status + 1, CAP)))
            code = draw(st.sampled_from(["0", "C", "R", "N"])) if status == 0 else str(status)
            amount = 0.0 if code == "N" else draw(st.floats(1, 1e4))
            month = (start + i).strftime("%Y-%m")
            limit = draw(st.sampled_from([1e3, 2e3]))
            rows.append((account, month, code, amount, draw(st.floats(0, 1e4)), limit))
            reported.append((account, month, status))
    return monthly(rows), reported


@PROPERTY
@given(possible_histories())
def test_possible_histories_read_back_to_the_reported_status_every_month(history):
    data, reported = history
    tables = from_monthly(data)
    for account, month, status in reported:
        derived = months_past_due(tables, account, month)
        assert (derived >= CAP) if status == CAP else (derived == status), (account, month, status, derived)
    assert tables.payments["imputed"].all()
    assert (tables.accounts["date_precision"] == "month").all()
    pd.testing.assert_frame_equal(validate(tables).bills, tables.bills)


@st.composite
def any_histories(draw) -> pd.DataFrame:
    """Any codes in any order, with gaps between months."""
    rows = []
    for account in draw(st.lists(st.integers(1, 100), min_size=1, max_size=3, unique=True)):
        offsets = sorted(draw(st.lists(st.integers(0, 30), min_size=1, max_size=12, unique=True)))
        for offset in offsets:
            code = draw(st.sampled_from(["0", "1", "2", "3", "5", "6", "C", "R", "N", "X"]))
            month = (pd.Period("2021-06", freq="M") + offset).strftime("%Y-%m")
            rows.append((account, month, code, draw(st.floats(1, 1e4)), draw(st.floats(0, 1e4)), 100.0))
    return monthly(rows).sample(frac=1, random_state=draw(st.integers(0, 1000)))


@PROPERTY
@given(any_histories())
def test_any_history_validates_and_never_shows_more_arrears_than_reported(data):
    tables = from_monthly(data)
    assert len(tables.bills) == int((~data["status"].isin(["N", "X"])).sum())
    assert tables.payments["imputed"].all()
    for row in data.itertuples():
        if row.status == "X":
            continue
        status = int(row.status) if row.status.isdigit() else 0
        derived = months_past_due(tables, row.account_id, row.month)
        assert (derived == 0) == (status == 0), (row, derived)
        assert min(derived, CAP) <= status, (row, derived)


def test_month_gaps_hold_arrears_until_a_status_clears_them():
    data = monthly([(1, "2024-01", "1", 10.0, 0.0, 100.0), (1, "2024-04", "0", 10.0, 10.0, 100.0)])
    tables = from_monthly(data)
    assert months_past_due(tables, 1, "2024-03") == 3  # nothing reported: still open
    assert tables.payments["payment_date"].dt.strftime("%Y-%m").tolist() == ["2024-04", "2024-04"]
