"""The synthetic world: contract-valid, reproducible, chunk-independent, realistic, and safe to write."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from plain import settlement

from features.contract import is_sorted, load_tables
from simulation import generate as gen
from simulation.generate import GenerateError, Request, generate, profile_summary
from simulation.params import WorldParams
from simulation.world import layout, simulate_chunk

SORT_KEYS = {
    "accounts": ["account_id"],
    "bills": ["account_id", "due_date", "statement_date", "bill_id"],
    "payments": ["account_id", "payment_date", "bill_id"],
    "limits": ["account_id", "effective_date"],
    "truth": ["account_id", "as_of"],
}


def _read(folder, name) -> pd.DataFrame:
    return pq.read_table(folder / name).to_pandas()


def test_generated_tables_pass_the_contract_and_are_written_sorted(baseline_dir):
    out, summary = baseline_dir
    tables = load_tables(out, optional=("macro", "truth"))  # raises ContractError on any violation
    assert len(tables.accounts) == 30_000
    assert tables.extraction_date == pd.Timestamp(summary["extraction_date"])
    for name, keys in SORT_KEYS.items():
        raw = _read(out, name)
        assert len(raw) == summary["rows"][name]
        assert is_sorted(raw, keys), f"{name} is not written sorted by {keys}"


def test_same_arguments_give_byte_identical_files(tmp_path):
    req = Request(3_000, 8, seed=5, chunk_accounts=1_000)
    generate(tmp_path / "a", req, progress=False)
    generate(tmp_path / "b", req, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.parquet"))
    assert len(files) == 5 * 3 + 1
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_output_does_not_depend_on_chunk_size_or_workers(tmp_path):
    generate(tmp_path / "one", Request(4_000, 10, seed=9, chunk_accounts=10_000, workers=1), progress=False)
    generate(tmp_path / "many", Request(4_000, 10, seed=9, chunk_accounts=700, workers=2), progress=False)
    for name in SORT_KEYS:
        pd.testing.assert_frame_equal(_read(tmp_path / "one", name), _read(tmp_path / "many", name))


def test_a_customers_luck_does_not_depend_on_who_else_is_simulated():
    params = WorldParams()
    small, large = layout(500, 4, params), layout(2_000, 4, params)
    a = simulate_chunk(params, small, 0, 400, months=6, seed=4, scenario="baseline", shock_month=3, with_truth=False)
    b = simulate_chunk(params, large, 0, 1_500, months=6, seed=4, scenario="baseline", shock_month=3, with_truth=False)
    n = a.observed["n_customers"]
    np.testing.assert_array_equal(a.observed["state"], b.observed["state"][:n])
    np.testing.assert_array_equal(a.observed["outcome"], b.observed["outcome"][:400])


def test_baseline_delinquency_profile_is_realistic(baseline_dir):
    prof = profile_summary(baseline_dir[1])
    assert 0.01 <= prof["dpd30_rate"] <= 0.04
    assert 0.005 <= prof["dpd90_rate"] <= 0.02
    assert prof["short_lag_per_dpd30_bill"] >= 3.0
    monthly = pd.DataFrame(baseline_dir[1]["profile"])
    assert monthly.loc[monthly["month"] >= 6, "dpd30_rate"].between(0.01, 0.04).all()


def test_shock_lifts_the_30_plus_rate_over_the_shock_months(baseline_dir, shock_dir):
    base, shock = (pd.DataFrame(d[1]["profile"]) for d in (baseline_dir, shock_dir))
    months = base["month"] >= 18
    assert (base.loc[~months, "dpd30_rate"].to_numpy() == shock.loc[~months, "dpd30_rate"].to_numpy()).all()
    assert shock.loc[months, "dpd30_rate"].mean() >= 1.5 * base.loc[months, "dpd30_rate"].mean()


def test_macro_table_publishes_the_shock(shock_dir):
    macro = _read(shock_dir[0], "macro.parquet")
    assert len(macro) == 36
    jump = macro["stress_index"].diff().to_numpy()
    assert np.nanargmax(jump) == 18 and jump[18] > 1.0
    assert (macro["published_date"] > macro["month"]).all()


def test_bills_settle_with_the_world_s_lags_and_penalties_beyond_grace(baseline_tables):
    t = baseline_tables
    b = settlement(t)
    lag = b.loc[b["converted_date"].isna(), "lag"].dropna()
    assert lag.min() >= -7
    assert ((lag == 1).mean() > 0.01) and ((lag == 2).mean() > 0.005)
    assert not lag.between(28, 30).any()  # late bills settle by day 27; missed ones once 30 DPD is reached
    assert (lag >= 33).any()  # cured arrears
    converted = b["converted_date"].notna()
    assert converted.any() and not t.payments["bill_id"].isin(b.loc[converted, "bill_id"]).any()
    kids = b[b["parent_bill_id"].notna()]
    assert kids["parent_bill_id"].isin(b.loc[converted, "bill_id"]).all()
    # the final payment of a bill paid within grace carries no penalty; beyond grace it does
    g = b.merge(t.accounts[["account_id", "grace_days"]], on="account_id")
    paid = t.payments.groupby("bill_id")["amount"].sum().rename("paid")
    g = g.join(paid, on="bill_id")
    inst = g[(g["amount_due"] == g["min_due"]) & g["paid"].notna()]
    within = inst[(inst["lag"] >= 1) & (inst["lag"] <= inst["grace_days"])]
    beyond = inst[inst["lag"] > inst["grace_days"]]
    assert len(within) and len(beyond)
    np.testing.assert_allclose(within["paid"], within["amount_due"], atol=0.011)
    expected = beyond["amount_due"] * (1 + 0.0005 * beyond["lag"])
    np.testing.assert_allclose(beyond["paid"], expected, rtol=1e-3, atol=0.02)


def test_bad_arguments_are_usage_errors_and_write_nothing(tmp_path):
    out = tmp_path / "never"
    cmd = [sys.executable, "-m", "simulation", "generate", "--accounts", "0", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.splitlines()[0].startswith("error: argument --accounts: 0 must be at least 1")
    assert "Traceback" not in res.stderr and not out.exists()
    res = subprocess.run([*cmd[:4], "--scenario", "boom"], capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice: 'boom'" in res.stderr


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(GenerateError, match="is not a generated dataset"):
        generate(precious, Request(100, 3), progress=False)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_an_interrupted_run_leaves_neither_output_nor_temporary_files(tmp_path, monkeypatch):
    real = gen._run_chunk

    def failing(params, lay, req, i, lo, hi, tmp):
        if i == 2:
            raise RuntimeError("disk full")
        return real(params, lay, req, i, lo, hi, tmp)

    monkeypatch.setattr(gen, "_run_chunk", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "out", Request(3_000, 4, chunk_accounts=500, workers=1), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_regenerating_replaces_an_earlier_dataset(tmp_path):
    generate(tmp_path / "d", Request(500, 4, seed=1), progress=False)
    summary = generate(tmp_path / "d", Request(800, 4, seed=1), progress=False)
    assert summary["rows"]["accounts"] == 800
    assert len(_read(tmp_path / "d", "accounts")) == 800
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
