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
    assert payments["amount"].tolist() == [100.0, 2.5, 3.0, 200.0]  # reported amounts kept, arrears' minimum
    assert payments["imputed"].tolist() == [False, True, True, False]  # imputed only where nothing was reported
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
        (lambda d: d.assign(bill_amount=[1.0, float("nan"), 3.0]), "monthly.bill_amount is missing or not finite"),
        (lambda d: d.assign(paid_amount=[1.0, -2.0, 3.0]), "monthly.paid_amount is negative"),
        (lambda d: d.assign(status=["C", "W", "0"]), "monthly.status reports a bill after the account closed"),
        (lambda d: d.assign(month=["2024-01", "someday", "2024-03"]), "monthly.month is not a calendar date"),
        (lambda d: d.drop(columns=["status"]), "monthly.status is missing"),
        (lambda d: d.iloc[:0], "monthly holds no row"),
    ],
)
def test_bad_monthly_rows_are_refused_naming_them(change, expected):
    data = monthly([(9, "2024-01", "C", 1.0, 1.0, 10.0), (9, "2024-02", "0", 2.0, 2.0, 10.0),
                    (9, "2024-03", "0", 3.0, 3.0, 10.0)])
    with pytest.raises(ContractError) as caught:
        from_monthly(change(data))
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "account_id 9" in str(caught.value) or "missing" in expected or "no row" in expected


@pytest.mark.parametrize(
    "config",
    [
        {"codes": {"N": "sometimes", "1": 1}},  # a meaning that is not one
        {"codes": {"1": 100}},  # past due beyond 99 months
        {"codes": {"C": "paid_in_full", "N": "no_use"}},  # nothing past due can be reported
        {"codes": {"": 1}},
        {"due_day": 31},
        {"min_due_rate": 1.5},
        {"product": "mortgage"},
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
    assert len(tables.bills) == int((data["status"] != "X").sum())  # a no-use month with a statement has a bill
    assert (tables.payments["amount"] > 0).all() and (tables.bills["amount_due"] >= 0).all()
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


def test_a_digit_can_mean_minimum_paid_and_exits_set_the_accounts_closing_and_charge_off():
    """A file whose 0 is "revolving, minimum paid" and 1..9 months past due, with closing and charge-off codes."""
    codes = {"0": "minimum_paid", **{str(k): k for k in range(1, 10)}, "C": "paid_in_full", "Z": "closed",
             "Q": "charged_off"}
    data = monthly([
        (1, "2024-01", "0", 100.0, 12.0, 500.0), (1, "2024-02", "C", 80.0, 80.0, 500.0),
        (1, "2024-03", "Z", 0.0, 0.0, 500.0),
        (2, "2024-01", "1", 50.0, 0.0, 500.0), (2, "2024-02", "2", 50.0, 0.0, 500.0),
        (2, "2024-03", "Q", 0.0, 0.0, 500.0), (2, "2024-04", "Q", 0.0, 0.0, 500.0),
    ])
    tables = from_monthly(data, MonthlyConfig(codes=codes))
    assert tables.bills.loc[tables.bills["account_id"] == 1, "min_due"].tolist()[0] == 12.0  # revealed by "0"
    accounts = tables.accounts.set_index("account_id")
    assert accounts.loc[1, "close_date"] == pd.Timestamp("2024-03-31") and pd.isna(accounts.loc[1, "charge_off_date"])
    assert accounts.loc[2, "charge_off_date"] == pd.Timestamp("2024-03-31")
    assert len(tables.bills) == 4  # exit months carry no bill
    assert months_past_due(tables, 2, "2024-04") == 4  # a charge-off settles nothing
    assert (tables.payments["account_id"] == 2).sum() == 0


def test_amounts_are_kept_as_reported_and_a_credit_balance_is_an_overpayment():
    data = monthly([
        (1, "2024-01", "0", 100.0, 40.0, 500.0),  # a part payment on a current month: it met the minimum
        (1, "2024-02", "0", 100.0, 130.0, 500.0),  # an overpayment
        (1, "2024-03", "0", -25.0, 0.0, 500.0),  # a credit balance
        (1, "2024-04", "N", 15.0, None, 500.0),  # no use, yet a statement: a bill, its payment imputed
        (1, "2024-05", "N", 0.0, 0.0, 500.0),  # no use and nothing owed: no bill
    ])
    tables = from_monthly(data)
    bills, payments = tables.bills, tables.payments
    assert bills["amount_due"].tolist() == [100.0, 100.0, 0.0, 15.0]
    assert bills["min_due"].tolist()[0] == 5.0  # the rate rule's minimum, below what was paid
    assert payments["amount"].tolist() == [40.0, 130.0, 25.0, 0.75]
    assert payments["imputed"].tolist() == [False, False, False, True]
    assert payments["payment_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-25", "2024-02-25", "2024-03-01",
                                                                        "2024-04-25"]
    assert [months_past_due(tables, 1, m) for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == [0, 0, 0, 0]


def test_a_current_month_whose_payment_fell_short_of_the_rule_lowers_the_minimum_to_it():
    data = monthly([(1, "2024-01", "0", 1000.0, 20.0, 5000.0), (1, "2024-02", "0", 1000.0, 0.0, 5000.0)])
    tables = from_monthly(data)  # the rule says 50 a month; the status says what was paid was enough
    assert tables.bills["min_due"].tolist() == [20.0, 0.0]
    assert tables.payments["amount"].tolist() == [20.0]
    assert [months_past_due(tables, 1, m) for m in ("2024-01", "2024-02")] == [0, 0]


# ----------------------------------------------------------------------------- python -m features adapt

WIDE_LAYOUT = """
due_day = 20
[codes]
"-2" = "no_use"
"-1" = "paid_in_full"
"0" = "minimum_paid"
"1" = 1
"2" = 2
"3" = 3
[wide]
account_id = "ID"
months = ["2005-07", "2005-08", "2005-09"]
status = ["PAY_3", "PAY_2", "PAY_0"]
bill_amount = ["BILL_AMT3", "BILL_AMT2", "BILL_AMT1"]
paid_amount = ["PAY_AMT3", "PAY_AMT2", "PAY_AMT1"]
credit_limit = "LIMIT_BAL"
"""


def _wide_file(folder) -> pd.DataFrame:
    """One row per card, a column per month, codes -2..3 as in a common public card data set."""
    wide = pd.DataFrame({"ID": [7, 8], "LIMIT_BAL": [1000.0, 3000.0], "PAY_3": [-1, 0], "PAY_2": [1, 0],
                         "PAY_0": [0, -2], "BILL_AMT3": [100.0, 500.0], "BILL_AMT2": [90.0, -40.0],
                         "BILL_AMT1": [80.0, 0.0], "PAY_AMT3": [100.0, 30.0], "PAY_AMT2": [0.0, 0.0],
                         "PAY_AMT1": [200.0, 0.0]})
    wide.to_csv(folder / "cards.csv", index=False)
    (folder / "layout.toml").write_text(WIDE_LAYOUT)
    return wide


def test_the_adapt_command_writes_a_wide_files_tables_that_read_back_to_its_statuses(tmp_path, capsys):
    from features.__main__ import main
    from features.extract_manifest import load_extract

    _wide_file(tmp_path)
    code = main(["adapt", "monthly", str(tmp_path / "cards.csv"), "--config", str(tmp_path / "layout.toml"),
                 "--out", str(tmp_path / "adapted")])
    assert code == 0, capsys.readouterr().err
    assert "extraction date 2005-09-30" in capsys.readouterr().out
    tables = load_extract(tmp_path / "adapted")  # the manifest's control totals are checked on the way in
    assert tables.extraction.day == pd.Timestamp("2005-09-30")
    reported = {(7, "2005-07"): 0, (7, "2005-08"): 1, (7, "2005-09"): 0, (8, "2005-07"): 0, (8, "2005-08"): 0,
                (8, "2005-09"): 0}
    assert {k: months_past_due(tables, *k) for k in reported} == reported
    assert tables.bills["due_date"].dt.day.unique().tolist() == [20]
    assert tables.payments.loc[tables.payments["account_id"] == 8, "amount"].tolist() == [30.0, 40.0]  # credit


def test_the_adapt_command_refuses_in_one_line_and_writes_nothing(tmp_path, capsys):
    from features.__main__ import main

    _wide_file(tmp_path)
    (tmp_path / "bad.toml").write_text(WIDE_LAYOUT.replace('"3" = 3', '"3" = "sometimes"'))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    runs = {
        "bad.toml": (["--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "a")],
                     "code '3' means 'sometimes'"),
        "long": (["--out", str(tmp_path / "b")], "lacks the column(s) account_id, month, status"),
        "taken": (["--config", str(tmp_path / "layout.toml"), "--out", str(tmp_path / "taken")],
                  "exists and is not empty"),
    }
    for args, message in runs.values():
        assert main(["adapt", "monthly", str(tmp_path / "cards.csv"), *args]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_long_file_with_other_column_names_is_read_through_the_layout(tmp_path):
    from features.monthly_file import load_layout, read_monthly

    monthly([(1, "2024-01", "C", 10.0, 10.0, 100.0)]).rename(columns={"account_id": "acct"}).to_parquet(
        tmp_path / "m.parquet")
    (tmp_path / "long.toml").write_text('[long]\naccount_id = "acct"\n')
    rows = read_monthly(tmp_path / "m.parquet", load_layout(tmp_path / "long.toml"))
    assert from_monthly(rows).accounts["account_id"].tolist() == [1]
