"""The input contract: what loads, what is refused, and how the refusal reads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import SCHEMAS, ContractError, Tables, is_sorted, load_tables, validate
from features.extraction import EVENT_COLUMNS, PLACEHOLDER_DATES, STATED, Extraction, parse_day, resolve

ROOT = Path(__file__).resolve().parents[1]
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def day(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def frames() -> dict[str, pd.DataFrame]:
    """A small valid world, in the dtypes pandas users would hand over (dates as strings on purpose)."""
    accounts = pd.DataFrame({
        "account_id": [2, 1], "customer_id": [7, 7], "product": ["installment", "revolving"],
        "open_date": ["2023-06-01", "2023-01-15"], "grace_days": [0, 3],
    })
    bills = pd.DataFrame({
        "account_id": [1, 1, 2, 2], "bill_id": [11, 10, 20, 21],
        "statement_date": ["2024-02-01", "2024-01-01", "2024-01-05", "2024-01-05"],
        "due_date": ["2024-02-25", "2024-01-25", "2024-02-05", "2024-03-05"],
        "amount_due": [120.0, 100.0, 50.0, 50.0], "min_due": [10.0, 5.0, 50.0, 50.0],
        "parent_bill_id": pd.array([None, None, None, 20], dtype="Int64"),
    })
    payments = pd.DataFrame({
        "account_id": [1, 1, 2], "bill_id": [10, 11, 20],
        "payment_date": ["2024-01-20", "2024-02-27", "2024-02-05"], "amount": [100.0, 10.0, 50.0],
    })
    limits = pd.DataFrame({
        "account_id": [1, 1, 2], "effective_date": ["2024-03-01", "2023-01-15", "2023-06-01"],
        "credit_limit": [2000.0, 1000.0, 0.0],
    })
    return {"accounts": accounts, "bills": bills, "payments": payments, "limits": limits}


def arrow(frame: pd.DataFrame) -> pa.Table:
    """As the simulator writes it: date columns as Arrow date32."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, name in enumerate(table.column_names):
        if name.endswith("_date") or name in ("month", "as_of"):
            dates = pd.to_datetime(frame[name]).to_numpy().astype("datetime64[D]")
            table = table.set_column(i, name, pa.array(dates, pa.date32()))
    return table


def write(folder: Path, tables: dict[str, pd.DataFrame], how: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if how == "parquet":
            pq.write_table(arrow(frame), folder / f"{name}.parquet")
        elif how == "parts":
            (folder / name).mkdir()
            half = len(frame) // 2
            pq.write_table(arrow(frame.iloc[half:]), folder / name / "part-1.parquet")
            pq.write_table(arrow(frame.iloc[:half]), folder / name / "part-0.parquet")
            (folder / name / "_SUCCESS").write_text("")
        else:
            frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def refusal(tables: dict[str, pd.DataFrame]) -> str:
    with pytest.raises(ContractError) as caught:
        validate(tables)
    return str(caught.value)


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("how", ["parquet", "parts", "csv"])
def test_every_storage_form_loads_to_the_same_typed_sorted_tables(tmp_path, how):
    loaded = load_tables(write(tmp_path, frames(), how))
    expected = validate(frames())
    for name in ("accounts", "bills", "payments", "limits"):
        pd.testing.assert_frame_equal(loaded.table(name), expected.table(name), check_dtype=True)
    bills = loaded.bills
    assert bills["due_date"].dtype == "datetime64[s]"
    assert bills["bill_id"].dtype == "int64" and bills["amount_due"].dtype == "float64"
    assert list(bills["bill_id"]) == [10, 11, 20, 21]
    assert loaded.accounts["date_precision"].tolist() == ["day", "day"]
    assert loaded.payments["imputed"].dtype == bool and not loaded.payments["imputed"].any()
    assert loaded.extraction_date == pd.Timestamp("2024-03-01")  # the latest event: a due date lies ahead
    assert loaded.macro is None and loaded.sources["bills"].startswith(str(tmp_path))


def test_parquet_date32_becomes_datetime64_seconds_without_objects(tmp_path):
    folder = write(tmp_path, frames(), "parquet")
    assert pq.read_schema(folder / "bills.parquet").field("due_date").type == pa.date32()
    assert load_tables(folder).bills["statement_date"].dtype == np.dtype("datetime64[s]")


def test_macro_and_truth_load_when_asked(tmp_path):
    folder = write(tmp_path, frames(), "parquet")
    macro = pd.DataFrame({"month": ["2024-01-01", "2024-02-01"],
                          "published_date": ["2024-02-10", "2024-03-10"], "stress_index": [1, 2]})
    truth = pd.DataFrame({"account_id": [1], "as_of": ["2024-01-31"], "p_default": [0.1]})
    write(tmp_path, {"macro": macro, "truth": truth}, "parquet")
    loaded = load_tables(folder, optional=("macro", "truth"))
    assert loaded.macro["stress_index"].dtype == "float64"
    assert loaded.truth["p_default"].tolist() == [0.1]
    assert loaded.extraction_date == pd.Timestamp("2024-03-01")  # events only: macro and truth never count
    assert load_tables(folder).truth is None


def test_header_only_files_give_empty_typed_tables(tmp_path):
    empty = {name: frame.iloc[:0] for name, frame in frames().items()}
    for name, frame in empty.items():
        (tmp_path / f"{name}.csv").write_text(",".join(frame.columns) + "\n")
    loaded = load_tables(tmp_path)
    assert len(loaded.bills) == 0
    assert loaded.bills["due_date"].dtype == "datetime64[s]" and loaded.bills["bill_id"].dtype == "int64"
    assert "converted_date" in loaded.bills and loaded.extraction_date is None
    parquet = load_tables(write(tmp_path / "pq", {k: v.iloc[:0] for k, v in frames().items()}, "parquet"))
    assert len(parquet.accounts) == 0 and parquet.accounts["open_date"].dtype == "datetime64[s]"


def test_unsorted_input_comes_back_sorted_and_revalidating_changes_nothing():
    tables = validate(frames())
    for name in ("accounts", "bills", "payments", "limits"):
        assert is_sorted(tables.table(name), SCHEMAS[name].sort_by)
    assert list(tables.bills["bill_id"]) == [10, 11, 20, 21]
    assert list(tables.payments["payment_date"].dt.strftime("%m-%d")) == ["01-20", "02-27", "02-05"]
    pd.testing.assert_frame_equal(validate(tables).bills, tables.bills)  # validating twice changes nothing


def test_missing_optional_columns_are_added_with_fixed_dtypes():
    bills = validate(frames()).bills
    assert bills["parent_bill_id"].dtype == "Int64"
    assert bills["converted_date"].isna().all() and bills["converted_date"].dtype == "datetime64[s]"


def test_validate_accepts_a_tables_object_and_keeps_extra_static_attributes():
    data = frames()
    data["accounts"]["region"] = ["north", "south"]
    tables = validate(Tables(**data))
    assert tables.accounts["region"].tolist() == ["south", "north"]


# ----------------------------------------------------------------------------------- refusals, by kind


def _set(name: str, column: str, row: int, value):
    def change(data: dict[str, pd.DataFrame]) -> None:
        frame = data[name]
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return change


ERRORS = {
    "due before statement": (_set("bills", "due_date", 1, "2023-12-31"), "bills.due_date", "bill_id 10"),
    "negative amount": (_set("bills", "amount_due", 0, -1.0), "bills.amount_due", "bill_id 11"),
    "infinite amount": (_set("payments", "amount", 2, np.inf), "payments.amount", "bill_id 20"),
    "negative limit": (_set("limits", "credit_limit", 0, -5.0), "limits.credit_limit", "account_id 1"),
    "min above amount": (_set("bills", "min_due", 1, 101.0), "bills.min_due", "bill_id 10"),
    "converted too early": (_set("bills", "converted_date", 0, "2024-01-31"), "bills.converted_date",
                            "bill_id 11"),
    "unknown product": (_set("accounts", "product", 0, "mortgage"), "accounts.product", "account_id 2"),
    "negative grace": (_set("accounts", "grace_days", 1, -1), "accounts.grace_days", "account_id 1"),
    "zero loan term": (_set("accounts", "loan_term", 1, 0), "accounts.loan_term is zero or negative", "account_id 1"),
    "duplicate bill": (_set("bills", "bill_id", 0, 10), "bills.bill_id", "bill_id 10"),
    "duplicate account": (_set("accounts", "account_id", 0, 1), "accounts.account_id", "account_id 1"),
    "duplicate limit date": (_set("limits", "effective_date", 0, "2023-01-15"),
                             "limits.(account_id, effective_date)", "account_id 1"),
    "payment of unknown bill": (_set("payments", "bill_id", 1, 99), "payments.bill_id", "bill_id 99"),
    "payment on other account": (_set("payments", "account_id", 2, 1), "payments.account_id", "bill_id 20"),
    "bill of unknown account": (_set("bills", "account_id", 3, 5), "bills.account_id", "account_id 5"),
    "limit of unknown account": (_set("limits", "account_id", 2, 6), "limits.account_id", "account_id 6"),
    "unknown parent": (_set("bills", "parent_bill_id", 3, 77), "bills.parent_bill_id", "bill_id 21"),
    "parent of other account": (_set("bills", "parent_bill_id", 3, 10), "bills.parent_bill_id", "bill_id 21"),
    "null key": (_set("bills", "bill_id", 2, None), "bills.bill_id", "row 3"),
    "null amount": (_set("payments", "amount", 0, None), "payments.amount", "bill_id 10"),
    "not a date": (_set("payments", "payment_date", 1, "2024-02-30"), "payments.payment_date", "bill_id 11"),
    "time of day": (_set("bills", "statement_date", 0, "2024-02-01 13:00"), "bills.statement_date",
                    "bill_id 11"),
    "not an id": (_set("bills", "account_id", 0, "A-1"), "bills.account_id", "bill_id 11"),
    "fractional id": (_set("payments", "bill_id", 0, 10.5), "payments.bill_id", "bill_id 10.5"),
    "not a number": (_set("limits", "credit_limit", 1, "lots"), "limits.credit_limit", "account_id 1"),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_each_kind_of_bad_row_is_refused_naming_table_column_and_rows(kind):
    change, subject, sample = ERRORS[kind]
    data = frames()
    change(data)
    message = refusal(data)
    first = message.splitlines()[0]
    assert first.startswith(subject), message
    assert f"({sample}" in first or f", {sample.split()[-1]}" in first, message
    assert " of " in first and "rows" in first
    assert len(message.splitlines()) >= 2 and message.splitlines()[1].startswith("  ")  # what to do


def test_missing_columns_list_what_is_missing_and_what_is_there():
    data = frames()
    data["bills"] = data["bills"].drop(columns=["due_date", "min_due"])
    message = refusal(data)
    assert message.startswith("bills.{due_date, min_due} are missing")
    assert "columns present: account_id, bill_id" in message


def test_counts_use_thousands_separators_and_samples_are_few():
    bills = pd.DataFrame({
        "account_id": 1, "bill_id": np.arange(2500), "statement_date": "2024-01-02", "due_date": "2024-01-01",
        "amount_due": 1.0, "min_due": 1.0,
    })
    with pytest.raises(ContractError) as caught:
        validate({"bills": bills})
    assert "in 2,500 of 2,500 rows (bill_id 0, 1, 2)" in str(caught.value)


def test_read_failures_name_the_file_and_never_leak_a_traceback(tmp_path):
    folder = write(tmp_path, frames(), "parquet")
    (folder / "limits.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ContractError, match=r"limits cannot be read from .*limits\.parquet"):
        load_tables(folder)
    (folder / "limits.parquet").write_bytes(b"")
    with pytest.raises(ContractError, match=r"limits.parquet: the file is empty"):
        load_tables(folder)


def test_absent_and_ambiguous_tables_are_refused(tmp_path):
    folder = write(tmp_path, frames(), "parquet")
    (folder / "payments.parquet").unlink()
    with pytest.raises(ContractError, match="payments is not found in"):
        load_tables(folder)
    assert load_tables(folder, require=("accounts", "bills")).payments is None
    write(tmp_path / "x", {"bills": frames()["bills"]}, "csv")
    (folder / "bills.csv").write_text((tmp_path / "x" / "bills.csv").read_text())
    with pytest.raises(ContractError, match=r"bills is found twice .*bills\.parquet, bills\.csv"):
        load_tables(folder, require=("bills",))


def test_nothing_is_half_loaded_problems_of_several_tables_are_reported_together(tmp_path):
    data = frames()
    data["bills"].loc[0, "amount_due"] = -1.0
    data["limits"].loc[0, "credit_limit"] = -1.0
    with pytest.raises(ContractError) as caught:
        load_tables(write(tmp_path, data, "parquet"))
    tables = {p.table for p in caught.value.problems}
    assert tables == {"bills", "limits"} and "2 more problem(s)" in str(caught.value)


def test_table_accessor_says_what_was_not_loaded():
    tables = validate(frames())
    with pytest.raises(ContractError, match="macro was not loaded"):
        tables.table("macro")


def test_cli_prints_a_summary_and_exits_1_on_bad_data_without_traceback(tmp_path):
    folder = write(tmp_path, frames(), "parquet")
    run = [sys.executable, "-m", "features", "validate", str(folder)]
    ok = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "bills" in ok.stdout and "4 rows   2024-01-01 .. 2024-03-05" in ok.stdout
    assert "taken as 2024-03-01, the latest event date" in ok.stdout
    (folder / "limits.parquet").write_bytes(b"junk")
    bad = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: limits cannot be read")
    assert "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "features", "validate", str(tmp_path / "no")],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert usage.returncode == 2


# ------------------------------------------------------------------------------------ property tests


@st.composite
def worlds(draw) -> dict[str, pd.DataFrame]:
    """Random valid tables, rows in random order."""
    n_accounts = draw(st.integers(1, 5))
    ids = st.integers(1, 10**12)
    account_ids = draw(st.lists(ids, min_size=n_accounts, max_size=n_accounts, unique=True))
    base = day("2022-01-01")
    accounts, bills, payments, limits = [], [], [], []
    next_bill = draw(st.integers(1, 10**9))
    for account in account_ids:
        product = draw(st.sampled_from(["revolving", "installment"]))
        accounts.append((account, draw(st.integers(1, 3)), product, base, draw(st.integers(0, 30))))
        for _ in range(draw(st.integers(0, 4))):
            statement = base + np.timedelta64(draw(st.integers(0, 700)), "D")
            due = statement + np.timedelta64(draw(st.integers(0, 40)), "D")
            amount = draw(st.floats(0, 1e6))
            bills.append((account, next_bill, statement, due, amount, amount * draw(st.floats(0, 1))))
            for _ in range(draw(st.integers(0, 2))):
                paid = statement + np.timedelta64(draw(st.integers(-5, 100)), "D")
                payments.append((account, next_bill, paid, draw(st.floats(0, 1e6))))
            next_bill += draw(st.integers(1, 1000))
        for offset in draw(st.lists(st.integers(0, 700), max_size=3, unique=True)):
            limits.append((account, base + np.timedelta64(offset, "D"), draw(st.floats(0, 1e7))))
    columns = {name: [c.name for c in SCHEMAS[name].columns if c.required] for name in SCHEMAS}
    data = {
        "accounts": pd.DataFrame(accounts, columns=columns["accounts"]),
        "bills": pd.DataFrame(bills, columns=columns["bills"]),
        "payments": pd.DataFrame(payments, columns=columns["payments"]),
        "limits": pd.DataFrame(limits, columns=columns["limits"]),
    }
    seed = draw(st.integers(0, 2**32 - 1))
    return {name: frame.sample(frac=1, random_state=seed) for name, frame in data.items()}


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    columns = list(a.columns)
    left = a.sort_values(columns, ignore_index=True)
    right = b[columns].sort_values(columns, ignore_index=True)
    return left.astype(str).equals(right.astype(str))


@PROPERTY
@given(worlds())
def test_any_valid_world_validates_and_comes_back_sorted_with_the_same_rows(data):
    tables = validate(data)
    for name, frame in data.items():
        out = tables.table(name)
        assert is_sorted(out, SCHEMAS[name].sort_by)
        assert len(out) == len(frame)
        assert _same_rows(frame.astype({c: "datetime64[s]" for c in frame if "date" in c}), out)


def _inject(kind: str, data: dict[str, pd.DataFrame], pick: int) -> tuple[str, str]:
    """Break one row of a valid world; return the message subject and the key the message must name."""
    bills, accounts = data["bills"], data["accounts"]
    row = bills.index[pick % len(bills)] if len(bills) else None
    bill = str(bills.loc[row, "bill_id"]) if len(bills) else ""
    if kind == "due_before_statement":
        bills.loc[row, "due_date"] = bills.loc[row, "statement_date"] - np.timedelta64(1, "D")
        return "bills.due_date", f"bill_id {bill}"
    if kind == "negative_min_due":
        bills.loc[row, "min_due"] = -0.5
        return "bills.min_due", f"bill_id {bill}"
    if kind == "min_above_amount":
        bills.loc[row, "min_due"] = bills.loc[row, "amount_due"] + 1.0
        return "bills.min_due", f"bill_id {bill}"
    if kind == "unknown_account":
        stranger = int(accounts["account_id"].max()) + 1
        bills.loc[row, "account_id"] = stranger
        return "bills.account_id", f"account_id {stranger}"
    if kind == "orphan_payment":
        orphan = int(bills["bill_id"].max()) + 1
        data["payments"] = pd.concat([data["payments"], pd.DataFrame({
            "account_id": [bills.loc[row, "account_id"]], "bill_id": [orphan],
            "payment_date": [bills.loc[row, "due_date"]], "amount": [1.0]})], ignore_index=True)
        return "payments.bill_id", f"bill_id {orphan}"
    account_row = accounts.index[pick % len(accounts)]
    accounts.loc[account_row, "grace_days"] = -3
    return "accounts.grace_days", f"account_id {accounts.loc[account_row, 'account_id']}"


KINDS = ["due_before_statement", "negative_min_due", "min_above_amount", "unknown_account", "orphan_payment",
         "negative_grace"]


@PROPERTY
@given(worlds(), st.sampled_from(KINDS), st.integers(0, 1000))
def test_one_bad_row_of_any_kind_is_refused_naming_that_row(data, kind, pick):
    if len(data["bills"]) == 0 and kind != "negative_grace":
        kind = "negative_grace"
    data = {name: frame.copy() for name, frame in data.items()}
    subject, key = _inject(kind, data, pick)
    with pytest.raises(ContractError) as caught:
        validate(data)
    lines = [p.message.splitlines()[0] for p in caught.value.problems]
    assert any(line.startswith(subject) and key.split()[-1] in line for line in lines), (subject, key, lines)


def test_parquet_timestamps_at_midnight_pass_and_times_of_day_are_named(tmp_path):
    data = frames()
    folder = write(tmp_path, data, "parquet")
    stamps = pd.to_datetime(data["payments"]["payment_date"]).astype("datetime64[ns]")
    payments = data["payments"].assign(payment_date=stamps)
    pq.write_table(pa.Table.from_pandas(payments, preserve_index=False), folder / "payments.parquet")
    assert load_tables(folder).payments["payment_date"].dtype == "datetime64[s]"
    payments.loc[2, "payment_date"] += pd.Timedelta(hours=9)
    pq.write_table(pa.Table.from_pandas(payments, preserve_index=False), folder / "payments.parquet")
    expected = r"payments.payment_date is not a calendar date .* \(bill_id 20\)"
    with pytest.raises(ContractError, match=expected):
        load_tables(folder)


def test_part_files_that_disagree_on_types_are_refused_naming_the_folder(tmp_path):
    folder = write(tmp_path, frames(), "parts")
    pq.write_table(pa.table({"account_id": ["x"], "effective_date": ["y"], "credit_limit": ["z"]}),
                   folder / "limits" / "part-2.parquet")
    with pytest.raises(ContractError, match=r"limits cannot be read from .*limits"):
        load_tables(folder)


# ----------------------------------------------------------------------------------- the compiled fast paths


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6)), min_size=0, max_size=40),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 8)), min_size=0, max_size=40))
def test_payment_lookups_by_account_runs_equal_a_plain_search(bill_pairs, pay_pairs):
    """The one-pass lookup of each payment's bill among its own account's bills (tables sorted by account)
    finds what a search of all bills finds: unknown bills, bills of other accounts, accounts without bills."""
    from features.contract import bill_rows
    from features.sorted_keys import differs_at

    bills = sorted({bill: acc for acc, bill in bill_pairs}.items(), key=lambda kv: (kv[1], kv[0]))
    bill_ids = np.array([b for b, _ in bills], dtype=np.int64)
    bill_acc = np.array([a for _, a in bills], dtype=np.int64)
    pays = sorted(pay_pairs)
    pay_acc = np.array([a for a, _ in pays], dtype=np.int64)
    wanted = np.array([b for _, b in pays], dtype=np.int64)
    rows = bill_rows(bill_ids, bill_acc, wanted, pay_acc)
    for i, w in enumerate(wanted):
        hit = np.flatnonzero(bill_ids == w)
        assert rows[i] == (hit[0] if len(hit) else -1)
    expected = np.array([r >= 0 and bill_acc[r] != a for r, a in zip(rows, pay_acc, strict=True)], dtype=bool)
    assert np.array_equal(differs_at(bill_acc, rows, pay_acc), expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3))), max_size=12))
def test_the_order_check_agrees_with_sorting(rows):
    """is_sorted (compiled, NaT compares to nothing as in numpy) agrees with pandas on ids and dates."""
    frame = pd.DataFrame({
        "account_id": np.array([a for a, _ in rows], dtype=np.int64),
        "day": pd.Series([None if d is None else np.datetime64(d, "D") for _, d in rows],
                         dtype="datetime64[s]"),
    })
    plain = frame.dropna()
    expected = plain.equals(plain.sort_values(["account_id", "day"], kind="stable"))
    assert is_sorted(plain, ["account_id", "day"]) == expected
    ids = frame["account_id"].to_numpy()
    assert is_sorted(frame, ["account_id"]) == bool((ids[1:] >= ids[:-1]).all())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-30_000, 30_000)), max_size=30), st.integers(1, 4))
def test_dates_read_and_turned_into_day_numbers_as_numpy_casts_them(days, chunks):
    """date32 (nulls and dates before 1970 included), in chunks, reads as numpy's cast to datetime64[s]
    gives it, and to_days gives back the day numbers (NaT as 'never')."""
    from features.builders import to_days
    from features.contract import _column_to_pandas
    from features.kernels import NONE

    arrays = [pa.array(days[i::chunks], type=pa.int32()).cast(pa.date32()) for i in range(chunks)]
    column = pa.chunked_array(arrays, type=pa.date32())
    expected = np.concatenate([a.to_numpy(zero_copy_only=False) for a in arrays]).astype("datetime64[s]")
    got = _column_to_pandas(column).to_numpy()
    assert got.dtype == np.dtype("datetime64[s]")
    assert np.array_equal(got, expected, equal_nan=True)
    as_days = expected.astype("datetime64[D]").astype(np.int64)
    assert np.array_equal(to_days(got), np.where(np.isnat(expected), NONE, as_days))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-2**40, 2**40)),
                          st.one_of(st.none(), st.integers(-30_000, 30_000)),
                          st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
                          st.one_of(st.none(), st.booleans())), max_size=40),
       st.integers(1, 3), st.integers(1, 7), st.booleans())
def test_parquet_parts_read_straight_into_columns_equal_arrows_conversion(tmp_path_factory, rows, parts, group,
                                                                          sliced):
    """The batch-by-batch reader gives the frame Arrow's whole-table conversion gives (nulls in integers,
    dates, floats and booleans; several parts and row groups; row groups read whole or in slices)."""
    from features import parquet_columns
    from features.contract import _arrow_to_pandas, part_files, read_arrow

    folder = tmp_path_factory.mktemp("parts")
    schema = pa.schema([("i", pa.int32()), ("d", pa.date32()), ("f", pa.float64()), ("b", pa.bool_())])
    for p in range(parts):
        mine = rows[p::parts]
        table = pa.table({"i": pa.array([r[0] for r in mine], type=pa.int64()).cast(pa.int32(), safe=False),
                          "d": pa.array([r[1] for r in mine], type=pa.int32()).cast(pa.date32()),
                          "f": pa.array([r[2] for r in mine], type=pa.float64()),
                          "b": pa.array([r[3] for r in mine], type=pa.bool_())}, schema=schema)
        pq.write_table(table, folder / f"part-{p}.parquet", row_group_size=group)
    old = parquet_columns.BATCH_ROWS
    parquet_columns.BATCH_ROWS = 2 if sliced else old  # row groups larger than this are read in slices
    try:
        got = parquet_columns.read_columns(part_files(folder))
    finally:
        parquet_columns.BATCH_ROWS = old
    expected = _arrow_to_pandas(read_arrow(folder))
    assert list(got.columns) == ["i", "d", "f", "b"] and len(got) == len(rows)
    assert got["d"].dtype == expected["d"].dtype == np.dtype("datetime64[s]")
    for name in ("i", "d", "f", "b"):  # integers without nulls come back as int64 where Arrow keeps int32
        assert got[name].astype(object).where(got[name].notna(), None).tolist() == \
            expected[name].astype(object).where(expected[name].notna(), None).tolist(), name


def test_parquet_parts_of_other_shapes_are_left_to_arrow(tmp_path):
    """Strings, or parts whose schemas differ, are not the plain case: None, and the caller reads via Arrow."""
    from features.parquet_columns import read_columns

    pq.write_table(pa.table({"s": ["a"]}), tmp_path / "strings.parquet")
    assert read_columns([tmp_path / "strings.parquet"]) is None
    pq.write_table(pa.table({"x": pa.array([1], pa.int64())}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": pa.array([1.5])}), tmp_path / "b.parquet")
    assert read_columns([tmp_path / "a.parquet", tmp_path / "b.parquet"]) is None
    assert read_columns([]) is None


def test_the_extraction_date_is_the_latest_event_date_nat_ignored():
    tables = validate(frames())
    latest = max(tables.table(name)[column].dropna().max() for name, columns in EVENT_COLUMNS.items()
                 for column in columns if column in tables.table(name) and tables.table(name)[column].notna().any())
    assert tables.extraction_date == latest and tables.extraction.derived
    assert validate(frames()).table("bills")["due_date"].max() > latest  # due dates lie ahead of it
    from features.contract import _latest
    assert _latest(pd.Series([None, None], dtype="datetime64[s]")) is None


def test_a_stated_extraction_date_refuses_every_event_after_it():
    stated = Extraction(pd.Timestamp("2024-02-10"), STATED)
    with pytest.raises(ContractError) as info:
        validate(frames(), extraction=stated)
    text = str(info.value)
    assert "payments.payment_date is after the extraction date 2024-02-10 (--extracted-on) in 1 of 3 rows" in text
    assert "limits.effective_date is after the extraction date 2024-02-10 (--extracted-on) in 1 of 3 rows" in text
    ok = validate(frames(), extraction=Extraction(pd.Timestamp("2024-03-01"), STATED))
    assert ok.extraction == Extraction(pd.Timestamp("2024-03-01"), STATED) and not ok.extraction.derived


def test_a_derived_extraction_date_is_never_after_today():
    future = frames()
    future["payments"].loc[1, "payment_date"] = "2031-02-27"  # a year typed wrong
    with pytest.raises(ContractError, match=r"payments.payment_date is after the extraction date \d{4}-\d{2}-\d{2} "
                       r"\(derived from the latest event date\) in 1 of 3 rows \(bill_id 11\)"):
        validate(future)
    assert resolve(None, pd.Timestamp("2031-02-27"), today=pd.Timestamp("2026-01-05")).day == pd.Timestamp("2026-01-05")


@pytest.mark.parametrize("placeholder", PLACEHOLDER_DATES)
def test_placeholder_dates_are_read_as_missing_not_as_events(placeholder):
    data = frames()
    data["accounts"]["charge_off_date"] = [placeholder, None]
    data["accounts"]["close_date"] = [None, placeholder]
    data["bills"]["converted_date"] = [None, placeholder, None, None]
    tables = validate(data)
    assert tables.accounts["charge_off_date"].isna().all() and tables.accounts["close_date"].isna().all()
    assert tables.bills["converted_date"].isna().all()
    assert tables.extraction_date == pd.Timestamp("2024-03-01")


@pytest.mark.parametrize(("table", "column", "value", "message"), [
    ("bills", "due_date", "2230-01-25", "bills.due_date is more than 60 months after the extraction date 2024-03-01"),
    ("accounts", "charge_off_date", "2023-01-01", "accounts.charge_off_date is before accounts.open_date"),
    ("accounts", "close_date", "2023-01-01", "accounts.close_date is before accounts.open_date in 1 of 2 rows "
                                             "(account_id 2)"),
    ("payments", "payment_date", "2023-11-20", "payments.payment_date is more than 31 days before its bill's "
                                               "statement_date in 1 of 3 rows (bill_id 10)"),
])
def test_dates_that_contradict_each_other_are_refused(table, column, value, message):
    data = frames()
    if column not in data[table]:
        data[table][column] = None
    data[table].loc[0, column] = value
    with pytest.raises(ContractError, match=re.escape(message)):
        validate(data)


def test_a_bill_issued_after_its_account_closed_is_refused_but_a_payment_after_the_closing_is_not():
    data = frames()  # account 1: statements on 2024-01-01 (bill 10) and 2024-02-01 (bill 11, paid 2024-02-27)
    data["accounts"]["close_date"] = [None, "2024-02-01"]  # closed on its last statement's day
    tables = validate(data)
    assert tables.accounts.set_index("account_id")["close_date"].isna().tolist() == [False, True]
    data["accounts"]["close_date"] = [None, "2024-01-15"]
    text = refusal(data)
    assert ("bills.statement_date is after its account's accounts.close_date in 1 of 4 rows (bill_id 11)" in text
            and "A closed account gets no new bills" in text)
    assert "payments.payment_date" not in text  # the payment after the closing is not a problem


def test_a_closing_is_an_event_dated_by_the_extraction():
    data = frames()
    data["accounts"]["close_date"] = [None, "2024-03-05"]
    assert validate(data).extraction_date == pd.Timestamp("2024-03-05")  # the latest event
    with pytest.raises(ContractError, match=re.escape("accounts.close_date is after the extraction date 2024-03-01 "
                                                      "(--extracted-on) in 1 of 2 rows (account_id 1)")):
        validate(data, extraction=Extraction(pd.Timestamp("2024-03-01"), STATED))


def test_extraction_dates_are_iso_days_only():
    assert parse_day("2025-12-31", "--as-of") == pd.Timestamp("2025-12-31")
    for text in ("2025-12", "31/12/2025", "01/02/2025", "2025/06/30", "2025-02-30", "2025-12-31T10:00"):
        with pytest.raises(ValueError, match="--as-of"):
            parse_day(text, "--as-of")


def test_payment_rows_found_by_validation_are_reused_only_with_the_frames_they_were_found_in():
    """Validation's lookup of each payment's bill is handed to the builder; a payments table swapped in
    afterwards gets its own lookup, never the stale rows."""
    import dataclasses

    data = frames()
    assert validate(data).links is None  # bills arrive out of order: sorting moves them, so nothing is kept
    data["bills"] = data["bills"].sort_values(["account_id", "due_date"], ignore_index=True)
    tables = validate(data)
    rows = tables.payment_bill_rows()
    assert rows is tables.links.rows
    bills, payments = tables.bills, tables.payments
    assert (bills["bill_id"].to_numpy()[rows] == payments["bill_id"].to_numpy()).all()
    fewer = dataclasses.replace(tables, payments=payments.iloc[1:].reset_index(drop=True))
    again = fewer.payment_bill_rows()
    assert again is not tables.links.rows and len(again) == len(payments) - 1
    assert (bills["bill_id"].to_numpy()[again] == fewer.payments["bill_id"].to_numpy()).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.none(), st.integers(0, 2)), st.integers(0, 2)),
                max_size=10))
def test_the_one_pass_order_check_reads_ties_and_nat_as_the_key_by_key_check(rows):
    """Keys checked together in one pass: a pair is decided by its first unequal key; NaT decides it
    without a descent (as numpy compares NaT to nothing), exactly as refining key by key does."""
    frame = pd.DataFrame({
        "a": np.array([r[0] for r in rows], dtype=np.int64),
        "d": pd.Series([None if r[1] is None else np.datetime64(r[1], "D") for r in rows], dtype="datetime64[s]"),
        "c": np.array([r[2] for r in rows], dtype=np.int64),
    })
    undecided, expected = np.ones(max(len(rows) - 1, 0), dtype=bool), True
    for name in ("a", "d", "c"):
        v = frame[name].to_numpy()
        before, after = v[:-1], v[1:]
        if v.dtype.kind == "M":
            undecided &= ~(np.isnat(before) | np.isnat(after))
        if (undecided & (before > after)).any():
            expected = False
            break
        undecided &= before == after
    assert is_sorted(frame, ["a", "d", "c"]) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), max_size=30), st.integers(1, 7))
def test_the_blockwise_comparison_equals_the_whole_one(pairs, block):
    from features.contract import _exceeds

    a, b = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    assert np.array_equal(_exceeds(a, b, 1e-9, block), a > b + 1e-9)


def test_a_broken_part_among_several_is_named(tmp_path):
    """In a folder of parts, the error names the folder and the part that cannot be read."""
    folder = write(tmp_path, frames(), "parts")
    (folder / "payments" / "part-1.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(ContractError, match=r"payments cannot be read from .*payments: part part-1\.parquet: "):
        load_tables(folder)
