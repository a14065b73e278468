"""The portfolio section: month-end DPD snapshots (features/dpd.py), vintage curves and roll rates
(validation/portfolio.py).

The snapshots are point in time (events after T never change DPD or status at T) and equal the catalog's
`dpd_now` at the same dates; vintage curves and roll rates are checked against counts worked by hand on frames
of 2-4 accounts, and end to end on a small generated world.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from matplotlib.figure import Figure
from test_features_pit import (
    PIT,
    _date,
    _line,
    frames,
    histories_with_as_of,
    histories_with_future,
    known_at,
    validated,
    with_anchor,
)

from features.builders import Prepared, build_features
from features.contract import load_tables, validate
from features.dpd import CHARGED_OFF, CLOSED, NOT_OPEN, ON_BOOK, dpd_at
from features.extraction import STATED, Extraction
from simulation.generate import Request, generate
from validation.portfolio import (
    BUCKETS,
    ROLL_FROM,
    bucket_of,
    month_ends_of,
    portfolio_frame,
    roll_rate_table,
    roll_rates,
    vintage_curves,
    vintage_figure,
)

# ------------------------------------------------------------------------------- snapshots, point in time


def _snapshot(world, T: int) -> pd.DataFrame:
    """dpd, worst_dpd and status of every account opened by T, as of T, by account_id."""
    return dpd_at(Prepared(validated(world)), [_date(T)]).frame().set_index("account_id")


@settings(PIT, max_examples=100)
@given(histories_with_future())
def test_events_after_as_of_never_change_dpd_or_status(case):
    world, T, rewritten = case
    seen = _snapshot(world, T)
    assert len(seen) == sum(a["open_date"] <= T for a in world.accounts)
    pd.testing.assert_frame_equal(_snapshot(known_at(world, T), T), seen)
    pd.testing.assert_frame_equal(_snapshot(rewritten, T).loc[seen.index], seen)


@settings(PIT, max_examples=100)
@given(histories_with_as_of())
def test_dpd_equals_the_catalogs_dpd_now(case):
    world, days = case
    tables = validated(world)
    features = build_features(tables, [_date(d) for d in days])[["account_id", "as_of", "dpd_now"]]
    got = dpd_at(Prepared(tables), [_date(d) for d in days]).frame()
    merged = features.merge(got, on=["account_id", "as_of"], how="outer", validate="one_to_one")
    assert len(merged) == len(features) == len(got)  # the same (account, date) rows: every account opened by T
    assert np.array_equal(merged["dpd_now"].to_numpy(), merged["dpd"].to_numpy(np.float64))


def test_dpd_counts_from_the_due_date_and_worst_dpd_keeps_the_deepest_day():
    """Bill 1 due on day 10, paid (its minimum) on day 45: 0 DPD on day 10, 34 on day 44, 0 again on day 45,
    when its worst so far stays 34; bill 2 due on day 40, never paid: 5 DPD on day 45, 60 on day 100."""
    world = _line([(1, 0, 10, 100.0, 20.0), (2, 30, 40, 50.0, 10.0)], [(1, 45, 20.0)])
    days = [10, 44, 45, 100]
    snap = dpd_at(Prepared(validated(with_anchor(world, days))), [_date(d) for d in days])
    row = int(np.searchsorted(snap.account_id, 1))
    assert snap.dpd[row].tolist() == [0, 34, 5, 60]
    assert snap.worst_dpd[row].tolist() == [0, 34, 34, 60]
    assert snap.status[row].tolist() == [ON_BOOK] * 4


def _with_accounts_columns(world, days, **columns) -> Prepared:
    """The world's tables with extra accounts columns: a value for account 1, none for the anchor."""
    raw = frames(with_anchor(world, days))
    for name, value in columns.items():
        raw["accounts"][name] = pd.array([value, None], dtype="Int64" if isinstance(value, int) else
                                         "datetime64[s]")
    return Prepared(validate(raw, extraction=Extraction(_date(max(days) + 400), STATED)))


def test_status_follows_opening_charge_off_and_closing_days():
    """Account 1 opens on day 0 (so is not open the day before), is closed on day 60 and charged off on day
    200: on the book until day 59, closed from 60, charged off from 200 (a charge-off beats a closing)."""
    world = _line([(1, 0, 10, 100.0, 100.0)])
    days = [-1, 0, 59, 60, 199, 200]
    prep = _with_accounts_columns(world, days, close_date=_date(60), charge_off_date=_date(200))
    snap = dpd_at(prep, [_date(d) for d in days])
    row = int(np.searchsorted(snap.account_id, 1))
    assert snap.status[row].tolist() == [NOT_OPEN, ON_BOOK, ON_BOOK, CLOSED, CLOSED, CHARGED_OFF]
    assert snap.frame().query("account_id == 1")["as_of"].min() == _date(0)  # rows from the opening day on


def test_a_loan_with_every_installment_due_and_settled_is_closed():
    """A 2-installment loan (loan_term 2) without a close_date: on the book while an installment is to come or
    unpaid, closed from the day the last one is settled (the targets' population rule)."""
    world = _line([(1, 0, 30, 50.0, 50.0), (2, 30, 60, 50.0, 50.0)], [(1, 30, 50.0), (2, 70, 50.0)])
    world.accounts[0]["product"] = "installment"
    days = [31, 60, 69, 70]
    snap = dpd_at(_with_accounts_columns(world, days, loan_term=2), [_date(d) for d in days])
    row = int(np.searchsorted(snap.account_id, 1))
    assert snap.status[row].tolist() == [ON_BOOK, ON_BOOK, ON_BOOK, CLOSED]
    assert snap.dpd[row].tolist() == [0, 0, 9, 0]


# ------------------------------------------------------------------------------------ frames by hand


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """(account_id, as_of, open_date, dpd, worst_dpd, bucket) rows."""
    out = pd.DataFrame(rows, columns=["account_id", "as_of", "open_date", "dpd", "worst_dpd", "bucket"])
    out["as_of"] = pd.to_datetime(out["as_of"])
    out["open_date"] = pd.to_datetime(out["open_date"])
    return out


ENDS = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31", "2024-06-30"]


def _vintage_frame() -> pd.DataFrame:
    """Cohort 2024Q1: account 1 (opened 10 Jan, 35 DPD at the end of March, cured in April) and account 2
    (opened 5 Feb, never 30+ at a month end, but 40 DPD in mid-June: worst_dpd 40 at the end of June, back to
    0 DPD). Cohort 2024Q2: account 3 (opened 1 April, 30 DPD at the end of June)."""
    one = [(1, e, "2024-01-10", d, w, "current") for e, d, w in zip(ENDS, [0, 0, 35, 0, 0, 0],
                                                                        [0, 0, 35, 35, 35, 35], strict=True)]
    two = [(2, e, "2024-02-05", d, w, "current") for e, d, w in zip(ENDS[1:], [0, 0, 0, 10, 0],
                                                                        [0, 0, 0, 10, 40], strict=True)]
    three = [(3, e, "2024-04-01", d, d, "current") for e, d in zip(ENDS[3:], [0, 0, 30], strict=True)]
    return _frame(one + two + three)


def test_vintage_curves_by_hand():
    """2024Q1 at months on book 1..4 (account 1 at Feb..May, account 2 at Mar..Jun): 0/2, 1/2, 1/2, 2/2; month 5
    shows account 1 only, so the curve stops at 4. 2024Q2 (account 3 at May, Jun): 0/1, 1/1 (30 counts)."""
    curves = vintage_curves(_vintage_frame())
    assert curves["cohort"].tolist() == ["2024Q1"] * 4 + ["2024Q2"] * 2
    assert curves["months_on_book"].tolist() == [1, 2, 3, 4, 1, 2]
    assert curves["accounts"].tolist() == [2, 2, 2, 2, 1, 1]
    assert curves["reached"].tolist() == [0, 1, 1, 2, 0, 1]
    assert np.allclose(curves["share"], [0, 0.5, 0.5, 1, 0, 1])


def test_vintage_curves_without_worst_dpd_read_the_month_end_dpds():
    """Without worst_dpd, account 1 stays "ever 30+" after its cure (the worst month end so far), and account
    2's mid-June episode is not seen: 2024Q1 is 0/2, 1/2, 1/2, 1/2."""
    curves = vintage_curves(_vintage_frame().drop(columns="worst_dpd"))
    assert curves.loc[curves["cohort"] == "2024Q1", "reached"].tolist() == [0, 1, 1, 1]


def test_vintage_cohorts_by_month_and_threshold():
    """By opening month and 10+ DPD: 2024-01 is account 1 alone (0, 35, 35, 35, 35 at months 1-5), 2024-02 is
    account 2 (0, 0, 10, 40 at months 1-4), 2024-04 is account 3."""
    curves = vintage_curves(_vintage_frame(), threshold=10, cohort="month").set_index(["cohort", "months_on_book"])
    assert curves.loc["2024-01", "reached"].tolist() == [0, 1, 1, 1, 1]
    assert curves.loc["2024-02", "reached"].tolist() == [0, 0, 1, 1]
    assert curves.loc["2024-04", "reached"].tolist() == [0, 1]


def test_a_cohort_not_seen_from_its_first_month_on_book_has_no_curve():
    late = _vintage_frame()
    late = late[late["as_of"] >= "2024-04-01"]  # 2024Q1 first seen at months on book 2 and 3
    assert vintage_curves(late)["cohort"].unique().tolist() == ["2024Q2"]


def _roll_frame() -> pd.DataFrame:
    """Account 1 current -> 1-29 -> 30-59; account 2 current -> current -> closed; account 3 90-179 -> charged
    off -> charged off; account 4 opens in February, current -> current."""
    buckets = {1: ["current", "1-29", "30-59"], 2: ["current", "current", "closed"],
               3: ["90-179", "charged off", "charged off"], 4: [None, "current", "current"]}
    rows = [(a, e, "2024-01-01", 0, 0, b) for a, bs in buckets.items() for e, b in zip(ENDS[:3], bs, strict=True)
            if b is not None]
    return _frame(rows)


def test_roll_rates_by_hand():
    """Pairs January -> February: current -> 1-29, current -> current, 90-179 -> charged off; February -> March:
    1-29 -> 30-59, current -> closed, current -> current (account 4); charged off starts no pair. So the
    current row is 2 current, 1 1-29, 1 closed of 4; 30-59 and 60-89 hold nobody (NaN)."""
    counts, shares = roll_rates(_roll_frame())
    assert list(counts.index) == list(ROLL_FROM) and list(counts.columns) == list(BUCKETS)
    assert counts.loc["current"].tolist() == [2, 1, 0, 0, 0, 0, 1]
    assert counts.loc["1-29"].tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert counts.loc["90-179"].tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert counts.to_numpy().sum() == 6
    assert shares.loc["current"].tolist() == [0.5, 0.25, 0, 0, 0, 0, 0.25]
    assert shares.loc[["30-59", "60-89"]].isna().all().all()
    table = roll_rate_table(counts, shares)
    assert table.loc["current", "current"] == "50.0 %" and table.loc["current", "account-months"] == "4"


def test_roll_rates_refuse_an_account_missing_at_the_next_month_end():
    frame = _roll_frame()
    frame = frame[~((frame["account_id"] == 1) & (frame["as_of"] == "2024-02-29"))]
    with pytest.raises(ValueError, match="account 1 is current as of 2024-01-31 but has no row as of 2024-02-29"):
        roll_rates(frame)


def test_inputs_that_cannot_be_read_are_refused_by_name():
    with pytest.raises(ValueError, match="lacks bucket"):
        roll_rates(_roll_frame().drop(columns="bucket"))
    with pytest.raises(ValueError, match="bucket must be one of"):
        roll_rates(_roll_frame().assign(bucket="late"))
    with pytest.raises(ValueError, match="cohort must be one of"):
        vintage_curves(_vintage_frame(), cohort="week")
    with pytest.raises(ValueError, match="status must be"):
        bucket_of([0], ["open"])


def test_buckets_of_dpd_and_status():
    got = bucket_of([0, 1, 29, 30, 59, 60, 89, 90, 179, 180, 5, 0],
                    ["on_book"] * 10 + ["charged_off", "closed"])
    assert list(got) == ["current", "1-29", "1-29", "30-59", "30-59", "60-89", "60-89", "90-179", "90-179",
                         "charged off", "charged off", "closed"]


def test_vintage_figure_has_a_line_per_cohort_and_labels_first_and_last():
    curves = vintage_curves(_vintage_frame(), cohort="month")
    fig = vintage_figure(curves)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["opened 2024-01", "opened 2024-04"]


# -------------------------------------------------------------------------------------- a generated world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("portfolio") / "baseline"
    generate(out, Request(2000, 24, seed=3, scenario="baseline", shock_month=12), progress=False)
    tables = load_tables(out, optional=("macro", "truth"))
    ends = month_ends_of(tables, 24)
    return tables, ends, portfolio_frame(tables, ends)


def test_world_frame_has_one_row_per_account_opened_by_each_month_end(world):
    tables, ends, frame = world
    assert not frame.duplicated(["account_id", "as_of"]).any()
    opened = tables.accounts["open_date"].to_numpy()
    assert [int((frame["as_of"] == e).sum()) for e in ends] == [int((opened <= e).sum()) for e in ends]
    assert ends[-1] == pd.Timestamp("2024-12-31") and len(ends) == 24


def test_world_dpd_equals_the_catalogs_dpd_now(world):
    tables, ends, frame = world
    features = build_features(tables, ends)[["account_id", "as_of", "dpd_now"]]
    merged = features.merge(frame, on=["account_id", "as_of"], validate="one_to_one")
    assert len(merged) == len(frame) == len(features)
    assert np.array_equal(merged["dpd_now"].to_numpy(), merged["dpd"].to_numpy(np.float64))


def test_world_roll_rates(world):
    _, _, frame = world
    counts, shares = roll_rates(frame)
    seen = counts.sum(axis=1) > 0
    assert seen.all()
    assert np.allclose(shares[seen].sum(axis=1), 1.0)
    assert shares.loc["current"].idxmax() == "current" and shares.loc["current", "current"] > 0.9
    assert counts.to_numpy().argmax() == 0  # current -> current is the largest cell
    # DPD grows a day a day: below 90 DPD at one month end, an account is below 180 at the next
    assert (counts.loc[["current", "1-29", "30-59", "60-89"], "charged off"] == 0).all()
    assert counts.loc["90-179", "charged off"] > 0


def test_world_charged_off_accounts_are_180_dpd_or_more(world):
    _, _, frame = world
    charged = frame[frame["bucket"] == "charged off"]
    assert len(charged) > 0 and (charged["dpd"] >= 180).all()


def test_world_vintage_curves_never_fall(world):
    _, _, frame = world
    curves = vintage_curves(frame)
    assert len(curves["cohort"].unique()) >= 7
    assert (curves.groupby("cohort")["share"].diff().dropna() >= 0).all()
    assert (curves.groupby("cohort")["months_on_book"].min() == 1).all()
    assert curves["share"].between(0, 1).all()
