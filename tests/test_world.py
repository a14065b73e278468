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
from simulation.book import book
from simulation.generate import GenerateError, Request, generate, profile_summary
from simulation.params import WorldParams
from simulation.world import simulate_chunk

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
    asked = summary["request"]["accounts"]
    assert abs(summary["open_accounts_at_end"] / asked - 1) <= 0.03  # the book's size, about what was asked
    assert len(tables.accounts) == summary["accounts"] > asked  # and the accounts closed or repaid before
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
    small, large = book(500, params, 12), book(2_000, params, 12)
    a = simulate_chunk(params, small, 0, small.n_customers, history=6, months=6, seed=4, scenario="baseline",
                       shock_month=3, with_truth=False)
    b = simulate_chunk(params, large, 0, large.n_customers, history=6, months=6, seed=4, scenario="baseline",
                       shock_month=3, with_truth=False)
    # the same (cohort, slot) is the same customer in both books: the same hidden path and repayments
    ka, kb = small.unit, large.unit
    common, ia, ib = np.intersect1d(ka, kb, return_indices=True)
    assert len(common) >= 400 and (small.cohort[ia] > 0).sum() >= 20  # arrivals too
    np.testing.assert_array_equal(a.observed["state"][ia], b.observed["state"][ib])
    _, la, lb = np.intersect1d(a.observed["lane_unit"], b.observed["lane_unit"], return_indices=True)
    assert len(la) >= len(common)
    np.testing.assert_array_equal(a.observed["outcome"][la], b.observed["outcome"][lb])


def test_baseline_delinquency_profile_is_realistic(baseline_dir):
    prof = profile_summary(baseline_dir[1])
    assert 0.01 <= prof["dpd30_rate"] <= 0.04
    assert 0.005 <= prof["dpd90_rate"] <= 0.02
    assert prof["short_lag_per_dpd30_bill"] >= 3.0
    monthly = pd.DataFrame(baseline_dir[1]["profile"])
    assert monthly.loc[monthly["month"] >= 0, "dpd30_rate"].between(0.01, 0.04).all()


def test_shock_lifts_the_30_plus_rate_over_the_shock_months(baseline_dir, shock_dir):
    base, shock = (pd.DataFrame(d[1]["profile"]) for d in (baseline_dir, shock_dir))
    months = base["month"] >= 18
    assert (base.loc[~months, "dpd30_rate"].to_numpy() == shock.loc[~months, "dpd30_rate"].to_numpy()).all()
    assert shock.loc[months, "dpd30_rate"].mean() >= 1.5 * base.loc[months, "dpd30_rate"].mean()


def test_macro_table_publishes_the_shock(shock_dir):
    macro = _read(shock_dir[0], "macro.parquet")
    history = shock_dir[1]["request"]["history_months"]
    assert len(macro) == history + 36  # the warehouse's history months are published too
    jump = macro["stress_index"].diff().to_numpy()
    assert np.nanargmax(jump) == history + 18 and jump[history + 18] > 1.0
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
    first = generate(tmp_path / "d", Request(500, 4, seed=1), progress=False)
    summary = generate(tmp_path / "d", Request(800, 4, seed=1), progress=False)
    assert summary["rows"]["accounts"] > first["rows"]["accounts"]
    assert len(_read(tmp_path / "d", "accounts")) == summary["rows"]["accounts"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


# ------------------------------------------------------------------------------------------ a living book

LEVEL_MONTHS = 36


@pytest.fixture(scope="module")
def level_book():
    """A baseline book large enough that month-to-month noise does not hide a trend: 100,000 accounts,
    24 history and 36 as-of months (tables kept in memory, no truth)."""
    params = WorldParams()
    bk = book(100_000, params, 24 + LEVEL_MONTHS)
    return simulate_chunk(params, bk, 0, bk.n_customers, history=24, months=LEVEL_MONTHS, seed=11,
                          scenario="baseline", shock_month=18, with_truth=False)


def _drift_over_the_months(values: np.ndarray) -> float:
    """The fitted linear change over the as-of months, as a share of the mean."""
    months = np.arange(len(values), dtype=float)
    return float(np.polyfit(months, values, 1)[0] * len(values) / values.mean())


def test_the_baseline_book_is_level_in_size_product_mix_risk_mix_and_delinquency(level_book):
    p = level_book.profile
    p = p[p["month"] >= 0]
    assert len(p) == LEVEL_MONTHS
    obs = level_book.observed
    high = []
    for m in range(24, 24 + LEVEL_MONTHS):
        on = obs["rev"] & (obs["first"] <= m) & (obs["closed_at"] > m) & (obs["charged_off"] > m)
        high.append((obs["risk"][obs["cidx"][on]] == 2).mean())
    series = {"open accounts": p["open_accounts"], "cash-loan share": p["open_loans"] / p["open_accounts"],
              "high-risk share of lines": np.array(high), "30+ DPD rate": p["dpd30_accounts"] / p["open_accounts"]}
    drift = {name: _drift_over_the_months(np.asarray(v, dtype=float)) for name, v in series.items()}
    assert all(abs(d) <= 0.05 for d in drift.values()), drift
    assert abs(p["open_accounts"].iloc[-1] / 100_000 - 1) < 0.03
    # and it is a living book: customers arrive, lines are closed, loans repaid and taken again
    assert (obs["cohort"] > 0).mean() > 0.3
    assert obs["closing"].sum() > 0.01 * LEVEL_MONTHS * p["open_lines"].mean() * 0.5
    assert level_book.accounts.to_pandas()["product"].eq("installment").sum() > 2 * p["open_loans"].mean()


def test_closed_lines_and_repaid_loans_get_no_new_bills(level_book):
    acc, bills = level_book.accounts.to_pandas(), level_book.bills.to_pandas()
    closed = acc.loc[acc["close_date"].notna(), ["account_id", "close_date", "product"]]
    assert set(closed["product"]) == {"revolving", "installment"}
    after = bills.merge(closed, on="account_id")
    assert not (after["statement_date"] > after["close_date"]).any()
    assert acc[["close_date", "charge_off_date"]].notna().all(axis=1).sum() == 0  # one way off the book
    assert (closed["close_date"] >= acc.set_index("account_id").loc[closed["account_id"], "open_date"].to_numpy()).all()


def test_drawing_on_a_line_stops_from_30_days_past_due(baseline_tables):
    t = baseline_tables
    b = settlement(t).merge(t.accounts[["account_id", "product"]], on="account_id")
    lines = b[(b["product"] == "revolving") & b["parent_bill_id"].isna()]
    late = lines[lines["settled"].isna() | (lines["lag"] >= 30)]
    # each line's statements that fall while one of its bills is 30+ days past due
    pairs = lines[["account_id", "statement_date"]].merge(
        late[["account_id", "due_date", "settled"]], on="account_id")
    over = (pairs["statement_date"] >= pairs["due_date"] + pd.Timedelta(days=30)) & (
        pairs["settled"].isna() | (pairs["settled"] > pairs["statement_date"]))
    assert len(late) > 100 and not over.any(), pairs[over].head()
    # so the balance never runs far past the limit
    limits = t.limits.sort_values(["effective_date"])
    stmt = lines.sort_values("statement_date")
    at = pd.merge_asof(stmt, limits, left_on="statement_date", right_on="effective_date", by="account_id")
    assert (at["amount_due"] / at["credit_limit"]).quantile(0.999) < 1.6


def test_a_replay_with_other_decisions_keeps_every_customers_luck():
    params = WorldParams()
    bk = book(1_500, params, 12)

    def halve(month_end):  # a policy that cuts every line at each month end
        return np.where(month_end.revolving, np.maximum(month_end.limit / 2, 100.0), np.nan)

    args = dict(history=6, months=6, seed=8, scenario="baseline", shock_month=3, with_truth=False)
    base = simulate_chunk(params, bk, 0, bk.n_customers, **args)
    cut = simulate_chunk(params, bk, 0, bk.n_customers, decisions=halve, **args)
    for name in ("state", "closing", "cured"):
        np.testing.assert_array_equal(base.observed[name], cut.observed[name])
    both = base.observed["has_obl"] & cut.observed["has_obl"]  # installment plans follow the amounts drawn
    assert both.sum() > 0.95 * base.observed["has_obl"].sum()
    np.testing.assert_array_equal(base.observed["outcome"][both], cut.observed["outcome"][both])
    amount = [x.bills.column("amount_due").to_numpy().sum() for x in (base, cut)]
    assert amount[1] < 0.6 * amount[0]
    assert cut.limits.column("credit_limit").to_numpy().min() >= 100.0 and len(cut.limits) > len(base.limits)


def test_every_feature_is_stable_from_the_first_as_of_month_to_the_last(baseline_dir, baseline_tables):
    """With the warehouse's history filling every window at the first as-of month, no feature drifts over the
    as-of months of a baseline book (the macro indicators and the calendar month move by design)."""
    from features.builders import Prepared, build_features, to_days
    from features.catalog import default_catalog
    from validation.metrics import psi, reference_distribution

    first, last = pd.Timestamp(baseline_dir[1]["as_of_from"]), pd.Timestamp(baseline_dir[1]["extraction_date"])
    prep = Prepared(baseline_tables)
    pairs = []
    for day in (first, last):
        on = prep.on_book(int(to_days(np.array([day.to_datetime64()]))[0]))
        pairs.append(pd.DataFrame({"account_id": prep.account_id[on], "as_of": day}))
    features = build_features(baseline_tables, pairs=pd.concat(pairs))
    at_first, at_last = (features[features["as_of"] == day] for day in (first, last))
    moving = {f.name for f in default_catalog() if f.family == "macro"} | {"calendar_month"}
    drift = {f.name: psi(reference_distribution(at_first[f.name].to_numpy(float)), at_last[f.name].to_numpy(float))
             for f in default_catalog() if f.name not in moving}
    assert len(drift) >= 80 and max(drift.values()) < 0.1, sorted(drift.items(), key=lambda kv: -kv[1])[:5]
