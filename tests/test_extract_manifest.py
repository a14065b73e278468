"""An extract's own manifest: the generator states control totals, a damaged copy is caught and named."""
from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.contract import SCHEMAS, ContractError
from features.extract_manifest import (
    FILE_NAME,
    SUMMED,
    check_control_totals,
    control_totals,
    read_extract_manifest,
    reconcile,
)
from simulation.generate import Request, generate


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small generated world in three parts per table (so a part can go missing)."""
    out = tmp_path_factory.mktemp("extract") / "world"
    summary = generate(out, Request(2_000, 12, seed=4, chunk_accounts=700), progress=False)
    assert len(list((out / "bills").glob("*.parquet"))) == 3
    return out, summary


@pytest.fixture
def copy(world, tmp_path):
    """A copy of the world to damage."""
    return shutil.copytree(world[0], tmp_path / "copy")


def stated(folder) -> dict:
    return json.loads((folder / FILE_NAME).read_text())["control_totals"]


def write_manifest(folder, fields) -> None:
    text = fields if isinstance(fields, str) else json.dumps(fields)
    (folder / FILE_NAME).write_text(text)


def only(problems):
    assert len(problems) == 1, [p.message for p in problems]
    return problems[0]


# ------------------------------------------------------------------------------------ a clean extract


def test_generated_world_states_every_table_and_reconciles_clean(world):
    folder, summary = world
    totals = stated(folder)
    assert {t: v["rows"] for t, v in totals.items()} == summary["rows"]  # counted apart, by the chunks
    assert totals["bills"]["sums"].keys() == {"amount_due", "min_due"}
    assert totals["accounts"]["sums"] == {}
    manifest = read_extract_manifest(folder)
    assert manifest.extraction_date == date.fromisoformat(summary["extraction_date"])
    assert manifest.control_totals == totals
    assert reconcile(folder, manifest) == []
    assert check_control_totals(folder) == []


def test_the_generators_totals_do_not_depend_on_its_chunks(world, tmp_path):
    generate(tmp_path / "one", Request(2_000, 12, seed=4, workers=1), progress=False)  # one part per table
    assert len(list((tmp_path / "one" / "bills").glob("*.parquet"))) == 1
    assert stated(tmp_path / "one") == stated(world[0])


def test_sums_are_the_exact_cents_of_every_value(world):
    folder, _ = world
    totals = control_totals(folder, ["payments", "limits"])
    for table, column in (("payments", "amount"), ("limits", "credit_limit")):
        values = pd.read_parquet(folder / table, columns=[column])[column].tolist()
        assert totals[table]["sums"][column] == sum(round(v * 100) for v in values)  # Python ints, row by row
    assert set(totals) == {"payments", "limits"}


def test_summed_columns_are_the_contracts_amount_columns():
    amounts = {name: tuple(c.name for c in schema.columns if c.kind == "amount") for name, schema in SCHEMAS.items()}
    assert dict(SUMMED) == {name: columns for name, columns in amounts.items() if columns}


# ------------------------------------------------------------------------------------ a damaged copy


def test_a_missing_part_file_is_named_as_a_truncated_transfer(copy):
    rows = stated(copy)["bills"]["rows"]
    gone = len(pd.read_parquet(copy / "bills" / "part-00001.parquet", columns=["bill_id"]))
    (copy / "bills" / "part-00001.parquet").unlink()
    problem = only(check_control_totals(copy))
    assert (problem.table, problem.column) == ("bills", "")
    assert f"in {copy / 'bills'}: {rows:,} rows stated in _manifest.json, {rows - gone:,} found" in problem.message
    assert rows >= 1_000 and "," in f"{rows:,}"  # the counts really are shown with separators
    assert "sum of amount_due" in problem.message and "less)" in problem.message
    assert "truncated" in problem.hint and "Re-extract or re-copy the folder" in problem.hint


def test_rows_cut_from_a_part_are_found(copy):
    part = copy / "bills" / "part-00002.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(0, table.num_rows - 1_234), part)
    rows = stated(copy)["bills"]["rows"]
    problem = only(check_control_totals(copy))
    assert f"{rows:,} rows stated in _manifest.json, {rows - 1_234:,} found" in problem.message
    assert only(check_control_totals(copy, sums=False)).message.startswith(problem.message.split(";")[0].split(",")[0])


def test_one_payment_changed_by_one_cent_is_found_with_the_difference(copy):
    part = copy / "payments" / "part-00001.parquet"
    table = pq.read_table(part)
    amounts = table.column("amount").to_numpy().copy()
    amounts[17] += 0.01
    pq.write_table(table.set_column(table.schema.get_field_index("amount"), "amount", pa.array(amounts)), part)
    cents = stated(copy)["payments"]["sums"]["amount"]
    problem = only(check_control_totals(copy))
    assert (problem.table, problem.column) == ("payments", "amount")
    assert "rows stated" not in problem.message
    whole, rest = divmod(cents, 100)
    assert f"sum of amount {whole:,}.{rest:02d} stated in _manifest.json" in problem.message
    assert "(0.01 more)" in problem.message and "amounts differ" in problem.hint
    assert check_control_totals(copy, sums=False) == []  # row counts alone (the footers) cannot see it


def test_extra_rows_and_absent_tables_are_named(copy):
    shutil.copy(copy / "limits" / "part-00000.parquet", copy / "limits" / "part-00003.parquet")
    shutil.rmtree(copy / "truth")
    problems = {p.table: p for p in check_control_totals(copy)}
    assert problems.keys() == {"limits", "truth"}
    assert "More rows than stated" in problems["limits"].hint
    assert "is stated in _manifest.json" in problems["truth"].message
    assert "not found in" in problems["truth"].message


def test_tables_the_manifest_does_not_name_are_not_checked(copy):
    totals = stated(copy)
    write_manifest(copy, {"control_totals": {"payments": totals["payments"]}})
    (copy / "bills" / "part-00001.parquet").unlink()
    assert check_control_totals(copy) == []


def test_a_damaged_part_or_a_non_finite_amount_names_the_file(copy):
    part = copy / "payments" / "part-00002.parquet"
    part.write_bytes(part.read_bytes()[:5_000])
    with pytest.raises(ContractError, match=r"payments cannot be read from .*part-00002\.parquet") as caught:
        check_control_totals(copy)
    assert "re-copy the folder" in str(caught.value)
    pq.write_table(pa.table({"amount": [1.0, float("inf")]}), part)
    with pytest.raises(ContractError, match=r"payments\.amount holds inf, not a finite amount .* in .*part-00002"):
        control_totals(copy, ["payments"])


# ------------------------------------------------------------------------------------ the manifest itself


@pytest.mark.parametrize(("text", "field", "said"), [
    ('{"extraction_date": "2024-13-01"}', "extraction_date", 'not a date as YYYY-MM-DD (got "2024-13-01")'),
    ('{"extraction_date": "2024-1-05"}', "extraction_date", "not a date as YYYY-MM-DD"),
    ('{"extraction_date": "2024-12-31T00:00"}', "extraction_date", "not a date as YYYY-MM-DD"),
    ('{"extraction_date": 20241231}', "extraction_date", "not a date as YYYY-MM-DD (got 20241231)"),
    ('{"as_of_from": "2023-02-30"}', "as_of_from", 'not a date as YYYY-MM-DD (got "2023-02-30")'),
    ('{"control_totals": {"bills": {"rows": 10}', "", "is not valid JSON (line 1, column"),
    ("[1, 2]", "", "is not a JSON object (got [1, 2])"),
    ('{"control_totals": null}', "control_totals", "is not an object"),
    ('{"control_totals": {"bill": {"rows": 3}}}', "control_totals.bill", "is not a table of the contract"),
    ('{"control_totals": {"bills": {"row": 3}}}', "control_totals.bills", 'is not {"rows": ...'),
    ('{"control_totals": {"bills": {"rows": 3, "sum": {"amount_due": 1}}}}', "control_totals.bills", 'is not {"rows'),
    ('{"control_totals": {"bills": {"rows": 3.0}}}', "control_totals.bills.rows", "not a whole number of rows"),
    ('{"control_totals": {"bills": {"rows": -1}}}', "control_totals.bills.rows", "not a whole number of rows"),
    ('{"control_totals": {"bills": {"rows": true}}}', "control_totals.bills.rows", "not a whole number of rows"),
    ('{"control_totals": {"accounts": {"rows": 3, "sums": {"grace_days": 1}}}}',
     "control_totals.accounts.sums.grace_days", "is not a summed column"),
    ('{"control_totals": {"bills": {"rows": 3, "sums": {"amount_due": 12.5}}}}',
     "control_totals.bills.sums.amount_due", "is not a whole number of cents (got 12.5)"),
])
def test_a_malformed_manifest_is_refused_naming_the_field_and_file(tmp_path, text, field, said):
    write_manifest(tmp_path, text)
    with pytest.raises(ContractError) as caught:
        read_extract_manifest(tmp_path)
    problem = only(caught.value.problems)
    assert (problem.table, problem.column) == ("manifest", field)
    assert said in problem.what
    assert str(tmp_path / FILE_NAME) in problem.message and problem.hint


def test_no_manifest_or_no_totals_leaves_nothing_to_reconcile(tmp_path):
    assert read_extract_manifest(tmp_path) is None
    assert check_control_totals(tmp_path) == []
    write_manifest(tmp_path, {"extraction_date": "2024-02-29", "producer": "nightly"})
    manifest = read_extract_manifest(tmp_path)
    assert (manifest.extraction_date, manifest.control_totals) == (date(2024, 2, 29), None)
    assert check_control_totals(tmp_path) == []  # no tables here, and none are asked for


# ------------------------------------------------------------------------------------ any writer, any layout


def test_csv_tables_give_the_totals_parquet_does_and_are_checked_too(world, tmp_path):
    folder, _ = world
    for name in ("accounts", "bills", "payments", "limits"):  # amounts to the cent, as a database would print
        pd.read_parquet(folder / name).to_csv(tmp_path / f"{name}.csv", index=False, float_format="%.2f")
    totals = stated(folder)
    write_manifest(tmp_path, {"control_totals": {n: totals[n] for n in ("accounts", "bills", "payments", "limits")}})
    assert check_control_totals(tmp_path) == []
    lines = (tmp_path / "bills.csv").read_text().splitlines(keepends=True)
    (tmp_path / "bills.csv").write_text("".join(lines[:-2_000]))
    problem = only(check_control_totals(tmp_path))
    rows = totals["bills"]["rows"]
    assert f"in {tmp_path / 'bills.csv'}: {rows:,} rows stated in _manifest.json, {rows - 2_000:,} found" in (
        problem.message)


def test_sums_do_not_depend_on_how_rows_are_split_or_ordered(tmp_path):
    rng = np.random.default_rng(7)
    amounts = np.round(rng.uniform(0, 5_000, 30_000), 2)
    amounts[:6] = [9e16, 9e16, 9e16, 0.125, 0.375, np.nan]  # past int64 in total; half cents round to even
    exact = sum(round(v * 100) for v in amounts if not np.isnan(v))  # Python ints: no overflow, no order
    assert exact > 2**63 and round(0.125 * 100) + round(0.375 * 100) == 12 + 38
    whole = pa.table({"account_id": np.arange(30_000), "amount": pa.array(amounts, from_pandas=True)})
    (tmp_path / "one").mkdir()
    pq.write_table(whole, tmp_path / "one" / "payments.parquet")
    shuffled = whole.take(rng.permutation(30_000))
    (tmp_path / "three" / "payments").mkdir(parents=True)
    for i, (lo, hi) in enumerate([(0, 4_000), (4_000, 21_000), (21_000, 30_000)]):
        pq.write_table(shuffled.slice(lo, hi - lo), tmp_path / "three" / "payments" / f"part-{i}.parquet",
                       row_group_size=3_000)
    one, three = control_totals(tmp_path / "one"), control_totals(tmp_path / "three")
    assert one == three == {"payments": {"rows": 30_000, "sums": {"amount": exact}}}


def test_a_stated_sum_of_a_column_the_table_lacks_is_a_problem(tmp_path):
    (tmp_path / "limits.csv").write_text("account_id,effective_date\n1,2024-01-01\n2,2024-01-01\n")
    write_manifest(tmp_path, {"control_totals": {"limits": {"rows": 2, "sums": {"credit_limit": 150_000}}}})
    problem = only(check_control_totals(tmp_path))
    assert (problem.table, problem.column) == ("limits", "credit_limit")
    assert "sum of credit_limit 1,500.00 stated in _manifest.json, but the column is missing" in problem.message
