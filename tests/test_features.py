"""The feature builder, catalog, transformer, labels and panel on generated worlds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from features.adapters import from_monthly
from features.builders import Prepared, build_features
from features.catalog import LONG_RECORD, RECORD_COUNTS, REFERENCE_COLUMNS, Bills, Days, Feature, default_catalog
from features.contract import validate
from features.labels import build_labels
from features.panel import build_panel
from features.targets import TARGET_NAMES as TARGETS
from features.transformer import RepaymentFeatures

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "subset_polars.py"


@pytest.fixture(scope="module")
def prep(baseline_tables):
    return Prepared(baseline_tables)


@pytest.fixture(scope="module")
def mid_year(baseline_tables):
    return pd.Timestamp("2024-06-30")


def test_catalog_page_is_current():
    page = (ROOT / "docs" / "features.md").read_text()
    assert page == default_catalog().to_markdown(), "run `python -m features catalog` and commit docs/features.md"


def test_catalog_refuses_bad_declarations():
    with pytest.raises(ValueError, match="unknown signal 'lag9'"):
        Feature("x", "x", 1, "f", Days(30), "lag9", "count")
    with pytest.raises(ValueError, match="risk must be"):
        Feature("x", "x", 2, "f")
    with pytest.raises(ValueError, match="twice: lag1_n3"):
        default_catalog().with_features(default_catalog()["lag1_n3"])


def test_a_new_windowed_count_is_only_a_declaration(prep, mid_year):
    extra = (Feature("lag1_d45", "bills paid 1 day late, due in the last 45 days", 1, "short_lag", Days(45), "lag1",
                     "count"),
             Feature("lag1_d90_again", "the same as lag1_d90", 1, "short_lag", Days(90), "lag1", "count"))
    frame = build_features(prep, [mid_year], default_catalog().with_features(*extra))
    assert list(frame.columns[-2:]) == ["lag1_d45", "lag1_d90_again"]
    np.testing.assert_array_equal(frame["lag1_d90_again"], frame["lag1_d90"])
    assert (frame["lag1_d30"] <= frame["lag1_d45"]).all() and (frame["lag1_d45"] <= frame["lag1_d90"]).all()
    assert frame["lag1_d45"].sum() > frame["lag1_d30"].sum()


def test_a_count_over_the_customers_other_accounts_is_only_a_declaration(prep, mid_year):
    extra = Feature("cust_other_lag1_n12", "bills paid 1 day late among the last 12 of each other account", 1,
                    "customer", Bills(12), "lag1", "others")
    frame = build_features(prep, [mid_year], default_catalog().with_features(extra))
    cust = pd.Series(prep.customer_id, index=prep.account_id).loc[frame["account_id"]].to_numpy()
    at = np.searchsorted(prep.account_id, frame["account_id"].to_numpy())
    day = mid_year.to_datetime64().astype("datetime64[D]").astype(np.int64)
    counted = frame["lag1_n12"].where(prep.close_day[at] > day, 0.0)  # a closed account is no longer the customer's
    assert (counted != frame["lag1_n12"]).any()
    family = counted.groupby(cust).transform("sum")  # the customer's accounts on the book at the date
    np.testing.assert_array_equal(frame["cust_other_lag1_n12"], family - counted)
    live = frame[prep.close_day[at] > day]
    assert (live.loc[live["cust_accounts"] == 1, "cust_other_lag1_n12"] == 0).all()
    assert live.loc[live["cust_accounts"] > 1, "cust_other_lag1_n12"].sum() > 0


def test_thirteen_columns_equal_the_independent_reference(baseline_tables, prep, mid_year):
    if not REFERENCE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the reference implementation is missing at {REFERENCE}")
        pytest.skip(f"the shared reference is not beside this checkout ({REFERENCE})")
    import importlib.util

    import polars as pl

    spec = importlib.util.spec_from_file_location("subset_polars", REFERENCE)
    ref_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref_mod)
    frames = {n: pl.from_pandas(getattr(baseline_tables, n)) for n in ("accounts", "bills", "payments", "limits")}
    ref = ref_mod.subset(frames["accounts"], frames["bills"], frames["payments"], frames["limits"],
                         mid_year.date()).to_pandas()
    ours = build_features(prep, [mid_year])
    ours = ours[ours["bills_due"] > 0].set_index("account_id")
    assert sorted(ours.index) == list(ref["account_id"])
    ours = ours.loc[ref["account_id"]]
    for col in REFERENCE_COLUMNS:
        a, b = ours[col].to_numpy(float), ref[col].to_numpy(float)
        if col in RECORD_COUNTS:  # the reference counts the whole record; the catalog caps it
            b = np.minimum(b, LONG_RECORD)
        same = np.isclose(a, b, rtol=0, atol=1e-9) | (np.isnan(a) & np.isnan(b))
        assert same.all(), f"{col}: {(~same).sum()} rows differ"


def test_many_dates_in_one_pass_equal_one_date_at_a_time(prep):
    dates = pd.to_datetime(["2023-09-30", "2024-03-31", "2025-12-31"])
    together = build_features(prep, dates)
    for d in dates:
        alone = build_features(prep, [d])
        pd.testing.assert_frame_equal(together[together["as_of"] == d].reset_index(drop=True), alone)


def test_dates_outside_the_data_are_refused(prep):
    with pytest.raises(ValueError, match="after the data's extraction date 2025-12-31"):
        build_features(prep, ["2026-01-01"])
    with pytest.raises(ValueError, match="before any data"):
        build_features(prep, ["1990-01-01"])
    with pytest.raises(ValueError, match="calendar days"):
        build_features(prep, ["2024-01-01 13:00"])


def test_empty_input_gives_an_empty_frame_with_every_column():
    empty = validate({
        "accounts": pd.DataFrame(columns=["account_id", "customer_id", "product", "open_date", "grace_days"]),
        "bills": pd.DataFrame(columns=["account_id", "bill_id", "statement_date", "due_date", "amount_due",
                                       "min_due"]),
        "payments": pd.DataFrame(columns=["account_id", "bill_id", "payment_date", "amount"]),
        "limits": pd.DataFrame(columns=["account_id", "effective_date", "credit_limit"]),
    })
    frame = build_features(empty, ["2024-06-30"])
    assert len(frame) == 0
    assert list(frame.columns) == ["account_id", "as_of", *default_catalog().names]


def test_transformer_follows_scikit_learn_conventions(baseline_tables, mid_year):
    est = RepaymentFeatures(as_of=[mid_year])
    with pytest.raises(NotFittedError):
        est.transform(baseline_tables)
    with pytest.raises(TypeError, match="takes the contract's Tables"):
        est.fit(np.zeros((3, 3)))
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    out = est.set_output(transform="pandas").fit(baseline_tables).transform(baseline_tables)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert out.index.names == ["account_id", "as_of"]
    assert out.index.get_level_values("as_of").unique().tolist() == [mid_year]
    last = RepaymentFeatures().fit(baseline_tables).transform(baseline_tables)
    assert last.index.get_level_values("as_of").unique().tolist() == [baseline_tables.extraction_date]


def test_month_precision_accounts_have_no_day_precision_features():
    monthly = pd.DataFrame({
        "account_id": [1] * 4 + [2] * 4,
        "month": ["2024-01", "2024-02", "2024-03", "2024-04"] * 2,
        "status": ["0", "1", "0", "C", "0", "0", "R", "0"],
        "bill_amount": [100.0] * 8, "paid_amount": [100.0, 0, 200, 100, 100, 100, 5, 100],
        "credit_limit": [1000.0] * 8,
    })
    frame = build_features(from_monthly(monthly), ["2024-04-25"])
    cat = default_catalog()
    day = [f.name for f in cat if f.day_precision]
    assert day and frame[day].isna().all().all()
    assert frame[["worst_dpd_n12", "late_n6", "paid_ratio_n6"]].notna().all().all()
    assert frame.loc[frame["account_id"] == 1, "late_n6"].item() >= 1


def test_labels_have_the_truth_s_populations_and_rates(baseline_tables, prep):
    truth = baseline_tables.truth
    dates = sorted(truth["as_of"].unique())[6:-7]
    labels = build_labels(prep, dates)
    both = labels.merge(truth, on=["account_id", "as_of"])
    for target in TARGETS:
        p = both[f"p_{target}_bayes"]
        # the same population, derived once from the tables and once inside the simulator
        np.testing.assert_array_equal(both[target].notna(), p.notna(), err_msg=target)
        rows = both[both[target].notna() & both[f"complete_{target}"]]
        # the observed rate is within 4 standard errors of the Bayes-optimal mean; an account contributes up
        # to len(dates) correlated rows, which widens the error by at most sqrt(len(dates))
        se = np.sqrt((p[rows.index] * (1 - p[rows.index])).sum() * len(dates)) / len(rows)
        assert abs(rows[target].mean() - rows[f"p_{target}_bayes"].mean()) < 4 * se, target


def test_panel_leaves_out_and_counts_unfinished_windows(prep):
    panel = build_panel(prep, "2025-01-31", "2025-12-31")
    counts = panel.counts.set_index("target")
    # a 6-month default window after July 2025 cannot be complete by 2025-12-31
    late = panel.frame["as_of"] > pd.Timestamp("2025-06-30")
    assert panel.frame.loc[late, "default"].isna().all()
    assert counts.loc["default", "incomplete_window"] > 0
    assert counts.loc["default", "usable"] == panel.frame["default"].notna().sum()
    assert panel.frame[list(TARGETS)].notna().any(axis=1).all()
    assert set(panel.target("default").columns) == {"account_id", "as_of", "default", *panel.feature_names}


def test_panel_rows_are_the_features_joined_to_their_usable_labels(prep):
    """The panel gathers feature rows by a sorted key instead of a hash join: it must equal the join."""
    dates = pd.date_range("2024-09-30", "2025-08-31", freq="ME")
    panel = build_panel(prep, dates[0], dates[-1])
    labels = build_labels(prep, list(dates))
    for t in TARGETS:
        labels[t] = labels[t].where(labels[f"complete_{t}"])
    labels = labels[labels[list(TARGETS)].notna().any(axis=1)][["account_id", "as_of", *TARGETS]]
    joined = build_features(prep, list(dates)).merge(labels, on=["account_id", "as_of"], how="inner")
    pd.testing.assert_frame_equal(panel.frame, joined)
    # the frame's feature columns are views of the one (features, rows) array the trainer bins and gathers from
    assert panel.values.flags.c_contiguous
    assert all(np.shares_memory(panel.frame[n].to_numpy(), panel.values) for n in panel.feature_names)
    np.testing.assert_array_equal(panel.matrix, joined[panel.feature_names].to_numpy())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(list(pd.date_range("2024-01-31", "2025-09-30", freq="ME"))),
       seed=st.integers(0, 2**31 - 1), share=st.sampled_from([0.2, 0.5, 0.9]))
def test_a_panel_spread_over_the_month_is_each_row_as_of_its_own_day(prep, start, seed, share):
    """A spread panel's row is the features and labels of its account as of its own day, exactly as the build
    for every account at that day gives them; each customer has one day a month, the month end for about
    `share` of them."""
    end = start + pd.offsets.MonthEnd(2)
    panel = build_panel(prep, start, end, month_end_share=share, seed=seed)
    frame = panel.frame
    day = pd.to_datetime(frame["as_of"])
    month = day.dt.to_period("M")
    assert ((day >= start - pd.offsets.MonthBegin(1)) & (day <= end)).all() and month.nunique() == 3
    customer = pd.Series(prep.customer_id[np.searchsorted(prep.account_id, frame["account_id"])])
    assert (frame.assign(c=customer, m=month).groupby(["c", "m"])["as_of"].nunique() == 1).all()
    at_end = (day == day + pd.offsets.MonthEnd(0)).to_numpy()
    days_left = (day + pd.offsets.MonthEnd(0) - day).dt.days.to_numpy()
    assert abs(at_end.mean() - share) < 0.03 + (1 - share) / 28, "month ends in about the share asked for"
    assert days_left.max() >= 27, "the other rows spread over the month"
    for when in np.random.default_rng(seed).choice(np.unique(frame["as_of"].to_numpy()), 4, replace=False):
        rows = frame[frame["as_of"] == when].reset_index(drop=True)
        whole = build_features(prep, [when]).set_index("account_id").loc[rows["account_id"]].reset_index()
        pd.testing.assert_frame_equal(rows[["account_id", "as_of", *panel.feature_names]], whole, check_dtype=False)
        labels = build_labels(prep, [when]).set_index("account_id").loc[rows["account_id"]]
        for t in TARGETS:
            expected = labels[t].where(labels[f"complete_{t}"]).to_numpy()
            np.testing.assert_array_equal(rows[t].to_numpy(), expected, err_msg=t)


def test_a_panel_of_month_ends_is_the_panel_with_a_share_of_one(prep):
    every = build_panel(prep, "2025-01-31", "2025-03-31")
    spread = build_panel(prep, "2025-01-31", "2025-03-31", month_end_share=1.0, seed=99)
    pd.testing.assert_frame_equal(every.frame, spread.frame)
    assert (pd.to_datetime(every.frame["as_of"]).dt.is_month_end).all()


def test_build_cli_refuses_a_future_date_and_writes_nothing(baseline_dir, tmp_path):
    out = tmp_path / "f.parquet"
    cmd = [sys.executable, "-m", "features", "build", str(baseline_dir[0]), "--as-of", "2030-01-31", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("error: as-of date 2030-01-31 is after")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_macro_table_with_fewer_indicators_leaves_the_others_missing(baseline_tables, mid_year):
    from dataclasses import replace

    macro = baseline_tables.macro.drop(columns=["unemployment_rate"])
    frame = build_features(replace(baseline_tables, macro=macro), [mid_year])
    assert frame["macro_unemployment_rate"].isna().all()
    assert frame["macro_stress_index"].notna().all()


def test_account_attributes_come_from_the_accounts_table(baseline_tables, prep, mid_year):
    frame = build_features(prep, [mid_year]).set_index("account_id")
    acc = baseline_tables.accounts.set_index("account_id").loc[frame.index]
    np.testing.assert_array_equal(frame["income_band"], acc["income_band"].astype(float))
    np.testing.assert_array_equal(frame["grace_days"], acc["grace_days"].astype(float))


def test_pairs_spread_over_the_month_give_the_rows_of_the_all_accounts_build(prep):
    days = pd.to_datetime(["2024-05-07", "2024-05-19", "2024-06-30", "2025-01-03"])
    everyone = build_features(prep, days)
    rng = np.random.default_rng(7)
    asked = everyone[["account_id", "as_of"]].sample(5_000, random_state=rng).reset_index(drop=True)
    asked = pd.concat([asked, asked.iloc[:10]], ignore_index=True)  # repeats come back as asked
    got = build_features(prep, pairs=asked)
    want = everyone.set_index(["account_id", "as_of"]).loc[pd.MultiIndex.from_frame(asked)].reset_index()
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    text = build_features(prep, pairs={"account_id": asked["account_id"][:3].tolist(),
                                       "as_of": asked["as_of"][:3].dt.strftime("%Y-%m-%d").tolist()})
    pd.testing.assert_frame_equal(text, want.iloc[:3], check_exact=True)


def test_pairs_that_cannot_be_built_are_refused_by_name(prep):
    opened = pd.Timestamp(np.datetime64(int(prep.open_day.max()), "D"))
    late_one = int(prep.account_id[prep.open_day.argmax()])
    cases = {
        "unknown": ({"account_id": [10**12], "as_of": ["2024-06-30"]}, "does not hold: account_id 1000000000000"),
        "not open": ({"account_id": [late_one], "as_of": [opened - pd.Timedelta(days=1)]}, "before it opened"),
        "no column": ({"account_id": [late_one]}, "columns account_id and as_of"),
        "time of day": ({"account_id": [late_one], "as_of": ["2024-06-30 12:00"]}, "calendar days"),
        "after extraction": ({"account_id": [late_one], "as_of": ["2031-01-01"]}, "after the data's extraction"),
    }
    for pairs, message in cases.values():
        with pytest.raises(ValueError, match=message):
            build_features(prep, pairs=pairs)
    with pytest.raises(ValueError, match="either as_of"):
        build_features(prep, "2024-06-30", pairs=cases["unknown"][0])
    with pytest.raises(ValueError, match="either as_of"):
        build_features(prep)


def _closing_world(close_date: str | None, charge_off_date: str | None = None) -> dict[str, pd.DataFrame]:
    """Two revolving lines opened 2024-01-01, statements on the 1st, due on the 25th. Account 1 pays January and
    February, leaves March unpaid and may close (and be charged off); account 2 pays every bill to October."""
    months = pd.date_range("2024-01-01", "2024-10-01", freq="MS")
    bills = pd.DataFrame({"account_id": [1] * 3 + [2] * len(months), "bill_id": range(1, len(months) + 4),
                          "statement_date": [*months[:3], *months], "amount_due": 100.0, "min_due": 10.0})
    bills["due_date"] = bills["statement_date"] + pd.Timedelta(days=24)
    paid = bills[(bills["account_id"] == 2) | (bills["statement_date"] < pd.Timestamp("2024-03-01"))]
    return {
        "accounts": pd.DataFrame({"account_id": [1, 2], "customer_id": [1, 2], "product": "revolving",
                                  "open_date": "2024-01-01", "grace_days": 0, "close_date": [close_date, None],
                                  "charge_off_date": [charge_off_date, None]}),
        "bills": bills,
        "payments": pd.DataFrame({"account_id": paid["account_id"], "bill_id": paid["bill_id"],
                                  "payment_date": paid["due_date"], "amount": 100.0}),
        "limits": pd.DataFrame({"account_id": [1, 2], "effective_date": "2024-01-01", "credit_limit": 1000.0}),
    }


def test_a_closed_account_leaves_every_population_on_its_closing_day():
    days = ["2024-02-29", "2024-03-14", "2024-03-15", "2024-03-31"]
    labels = build_labels(validate(_closing_world("2024-03-15")), days).set_index(["account_id", "as_of"])
    closing = labels.loc[1]
    assert list(closing.index.strftime("%Y-%m-%d")) == days[:2], "on the book before the closing day only"
    # before the closing, the default window holds the closing day: the label is decided by the bills there are
    # (March's, unpaid 30 days past its due date on 2024-04-24), and the window is complete
    assert closing["default"].tolist() == [1.0, 1.0] and closing["complete_default"].all()
    assert closing["early_warning"].tolist() == [1.0, 1.0]
    assert len(labels.loc[2]) == len(days)
    # without the closing the account would still be there: the close_date is what takes it off the book
    kept = build_labels(validate(_closing_world(None)), days)
    assert (kept["account_id"] == 1).sum() == len(days)


def test_a_closed_account_has_panel_rows_only_before_its_closing_day():
    def months_of(world) -> list[str]:
        panel = build_panel(validate(world), "2024-01-31", "2024-04-30")
        return list(panel.frame.loc[panel.frame["account_id"] == 1, "as_of"].dt.strftime("%Y-%m-%d"))

    assert months_of(_closing_world("2024-03-15")) == ["2024-01-31", "2024-02-29"]
    assert "2024-03-31" in months_of(_closing_world(None))


def test_an_account_leaves_the_book_at_the_first_of_its_charge_off_and_closing():
    for close, charge, leaves in (("2024-03-15", None, "2024-03-15"), ("2024-03-15", "2024-04-30", "2024-03-15"),
                                  ("2024-03-15", "2024-03-10", "2024-03-10"), (None, None, None)):
        prep = Prepared(validate(_closing_world(close, charge)))
        day = np.datetime64(leaves, "D").astype(np.int64) if leaves else None
        assert prep.on_book(prep.open_day[0]).all()
        if day is None:
            assert prep.on_book(int(prep.payment_day.max())).all()
        else:
            assert prep.exit_day[0] == day
            assert prep.on_book(day - 1)[0] and not prep.on_book(day)[0] and prep.on_book(day)[1]


@given(st.lists(st.integers(-25_000, 120_000), min_size=1, max_size=200))  # 1901-07 .. 2298-07
@settings(max_examples=60, deadline=None)
def test_calendar_months_and_month_ends_are_numpys_calendar(days):
    """The compiled calendar arithmetic the review's monthly views use gives what numpy's casts give."""
    from features.days import NAT, calendar_months, month_end_days

    d = np.array(days, dtype=np.int64)
    months = calendar_months(d)
    assert np.array_equal(months, d.astype("datetime64[D]").astype("datetime64[M]").view(np.int64))
    ends = month_end_days(months)
    assert np.array_equal(ends, (months + 1).astype("datetime64[M]").astype("datetime64[D]").view(np.int64) - 1)
    assert (ends >= d).all() and (calendar_months(ends + 1) == months + 1).all()
    assert calendar_months(np.array([NAT]))[0] == NAT and month_end_days(np.array([NAT]))[0] == NAT
