"""The latent-state filter: outcomes as known at T, EM on a planted world, point-in-time features, storage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from test_features_pit import BASE, PIT, World, _date, _line, histories_with_future, known_at, validated

from features.builders import Prepared
from features.kernels import NONE
from features.outcomes import (
    EARLY,
    LAG1,
    LATE,
    MISSED,
    MISSED_DAYS,
    BillOutcomes,
    lag_category,
    month_number,
)
from models.latent_state import LatentStateFilter, with_latent


def _outcomes(world: World) -> BillOutcomes:
    return BillOutcomes(Prepared(validated(world)))


def _day(T: int) -> int:
    return int(np.datetime64(_date(T).date(), "D").astype(np.int64))


def _month_of(T: int, hist: BillOutcomes) -> int:
    return int(month_number(np.array([_day(T)]))[0]) - hist.first_month


def _interval(world: World, T: int, due: int) -> tuple[int, int]:
    """Account 1's outcome interval as known at T, in the month of day `due`."""
    hist = _outcomes(world)
    lo, hi = hist.as_of(_day(T), hist.first_month, _month_of(T, hist) + 1)
    m = _month_of(due, hist)
    return int(lo[0, m]), int(hi[0, m])


def test_lags_fall_into_six_categories():
    got = lag_category(np.array([-3, 0, 1, 2, 3, 29, 30, NONE]))
    assert got.tolist() == [0, 1, 2, 3, 4, 4, 5, 5]


def test_an_unpaid_bill_is_censored_until_it_is_settled_or_30_days_late():
    paid_late = _line([(1, 0, 20, 100.0, 50.0)], [(1, 45, 50.0)])
    assert _interval(paid_late, 19, 20) == (-1, -1)  # not yet due: unobserved
    assert _interval(paid_late, 20, 20) == (LAG1, MISSED)  # due today, unpaid: at least a day late
    assert _interval(paid_late, 44, 20) == (LATE, MISSED)
    assert _interval(paid_late, 45, 20) == (LATE, LATE)  # settled 25 days late: known
    never = _line([(1, 0, 20, 100.0, 50.0)])
    assert _interval(never, 48, 20) == (LATE, MISSED)
    assert _interval(never, 49, 20) == (MISSED, MISSED)  # 29 days past due at the end of day 49: 30+ late


def test_the_worst_bill_of_a_month_bounds_its_outcome():
    two = _line([(1, 0, 20, 100.0, 50.0), (2, 5, 25, 80.0, 80.0)], [(1, 20, 50.0), (2, 26, 80.0)])
    assert _interval(two, 40, 20) == (LAG1, LAG1)  # on time and one day late: one day late
    open_one = _line([(1, 0, 20, 100.0, 50.0), (2, 5, 25, 80.0, 80.0)], [(1, 20, 50.0)])
    assert _interval(open_one, 30, 20) == (LATE, MISSED)  # one on time, one unpaid 5 days past due


def test_month_precision_accounts_never_show_one_or_two_day_lags():
    coarse = _line([(1, 0, 20, 100.0, 50.0)], [(1, 21, 50.0)], precision="month")
    assert _interval(coarse, 40, 20) == (0, LATE)  # paid within 30 days: somewhere from early to late
    exact = _line([(1, 0, 20, 100.0, 50.0)], [(1, 21, 50.0)])
    assert _interval(exact, 40, 20) == (LAG1, LAG1)


def test_the_compiled_pass_gives_each_bill_what_the_definitions_say(baseline_tables):
    prep = Prepared(baseline_tables)
    hist = BillOutcomes(prep)
    settled = prep.settled_day < NONE
    final = lag_category(np.where(settled, prep.settled_day - prep.due_day, NONE))
    account = np.repeat(np.arange(len(prep.account_id)), np.diff(prep.bill_start))
    coarse = prep.month_precision[account] & (final < MISSED)
    assert np.array_equal(hist.account, account)
    assert np.array_equal(hist.final_lo, np.where(coarse, EARLY, final))
    assert np.array_equal(hist.final_hi, np.where(coarse, LATE, final))
    assert np.array_equal(hist.known_day,
                          np.minimum(np.where(settled, prep.settled_day, NONE), prep.due_day + MISSED_DAYS))
    assert np.array_equal(hist.month, month_number(prep.due_day))
    assert all((final == c).any() for c in range(MISSED + 1))  # the world shows every category


# ------------------------------------------------------------------------------------------ a planted world


def _planted(n: int = 400, months: int = 14, seed: int = 0) -> tuple[World, np.ndarray]:
    """One revolving account per customer, a bill due on day 10 of each month. Half the customers have the
    habit of paying a day or two late (in 60 % of months); the rest pay on time or early."""
    rng = np.random.default_rng(seed)
    habit = rng.random(n) < 0.5
    world = World()
    bill_id = 0
    for a in range(n):
        world.accounts.append({"account_id": a + 1, "customer_id": a + 1, "product": "revolving", "open_date": 0,
                               "grace_days": 3, "date_precision": "day"})
        world.limits.append({"account_id": a + 1, "effective_date": 0, "credit_limit": 1000.0})
        for m in range(months):
            bill_id += 1
            due = ((BASE + pd.DateOffset(months=m + 1)).replace(day=10) - BASE).days
            world.bills.append({"account_id": a + 1, "bill_id": bill_id, "statement_date": due - 20, "due_date": due,
                                "amount_due": 100.0, "min_due": 100.0, "parent_bill_id": None,
                                "converted_date": None})
            lag = int(rng.integers(1, 3)) if habit[a] and rng.random() < 0.6 else int(rng.integers(-3, 1))
            world.payments.append({"account_id": a + 1, "bill_id": bill_id, "payment_date": due + lag,
                                   "amount": 100.0})
    return world, habit


@pytest.fixture(scope="module")
def planted():
    world, habit = _planted()
    hist = _outcomes(world)
    day = int(hist.due.max())
    fitted = LatentStateFilter(n_classes=2, n_states=2, max_iter=40).fit(hist, day)
    return world, habit, hist, day, fitted


def test_em_climbs_and_finds_the_planted_habit(planted):
    from validation.metrics import auc

    _, habit, hist, day, fitted = planted
    ll = np.array(fitted.loglik_)
    assert len(ll) >= 2 and (np.diff(ll) >= -1e-6 * abs(ll[-1])).all(), "EM must never lower the likelihood"
    X = fitted.transform(hist, hist.account_id, np.full(len(hist.account_id), np.datetime64(int(day), "D")))
    names = list(fitted.get_feature_names_out())
    # the class whose healthy state shows more 1-2 day lags is the habit; its posterior should find who has it
    lagging = int(np.argmax(fitted.emit_[:, 0, LAG1:LATE].sum(axis=1)))
    posterior = X[:, names.index(f"latent_class{lagging}")]
    assert auc(habit.astype(float), posterior) > 0.95
    assert fitted.emit_[lagging, 0, LAG1:LATE].sum() > 0.3 > fitted.emit_[1 - lagging, 0, LAG1:LATE].sum()
    assert np.allclose(fitted.trans_.sum(axis=2), 1.0) and np.allclose(fitted.emit_.sum(axis=2), 1.0)
    assert (np.diff(fitted.trans_[:, 0, 0]) <= 0).all()  # classes ordered: the steadiest first
    assert ((X[:, 0] > 0) & (X[:, 0] < 1)).all()


def test_fits_are_deterministic_and_survive_a_round_trip(planted):
    _, _, hist, day, fitted = planted
    again = LatentStateFilter(n_classes=2, n_states=2, max_iter=40).fit(hist, day)
    assert again.to_dict() == fitted.to_dict()
    back = LatentStateFilter.from_dict(fitted.to_dict())
    rows = np.full(len(hist.account_id), np.datetime64(int(day) - 40, "D"))
    np.testing.assert_array_equal(back.transform(hist, hist.account_id, rows),
                                  fitted.transform(hist, hist.account_id, rows))
    broken = fitted.to_dict() | {"trans": fitted.trans_[:, :1].tolist()}
    with pytest.raises(ValueError, match="trans has shape"):
        LatentStateFilter.from_dict(broken)
    with pytest.raises(ValueError, match="incomplete or malformed"):
        LatentStateFilter.from_dict({k: v for k, v in fitted.to_dict().items() if k != "emit"})


def test_catalog_features_describe_every_column(planted):
    from features.catalog import default_catalog

    fitted = planted[4]
    catalog = with_latent(default_catalog(), fitted)
    names = list(fitted.get_feature_names_out())
    assert catalog.names[-len(names):] == names
    assert catalog[names[0]].risk == 1 and all(catalog[n].family == "latent" for n in names)
    assert with_latent(default_catalog(), None).names == default_catalog().names


def test_bad_parameters_and_an_empty_history_get_clear_errors(planted):
    hist = planted[2]
    with pytest.raises(ValueError, match="n_classes must be a whole number >= 1"):
        LatentStateFilter(n_classes=0).fit(hist, int(hist.due.max()))
    with pytest.raises(ValueError, match="no bill is due by"):
        LatentStateFilter().fit(hist, int(hist.due.min()) - 1)
    with pytest.raises(ValueError, match="not in the history"):
        planted[4].transform(hist, np.array([10**9]), np.array([np.datetime64(int(hist.due.max()), "D")]))


# ---------------------------------------------------------------------------------------- point in time


def _fixed_filter() -> LatentStateFilter:
    """Parameters set by hand (no fit): the property is about what the filter reads, not what it learned."""
    emit = np.array([[[0.3, 0.6, 0.05, 0.03, 0.015, 0.005], [0.1, 0.3, 0.2, 0.1, 0.2, 0.1]],
                     [[0.2, 0.4, 0.2, 0.1, 0.07, 0.03], [0.05, 0.1, 0.1, 0.1, 0.3, 0.35]]])
    trans = np.array([[[0.95, 0.05], [0.3, 0.7]], [[0.85, 0.15], [0.2, 0.8]]])
    return LatentStateFilter.from_dict({
        "n_classes": 2, "n_states": 2, "horizon_months": 6, "band_values": [], "prior": [[0.4, 0.1, 0.35, 0.15]],
        "trans": trans.tolist(), "emit": emit.tolist(), "fit_day": 0, "n_iter": 0, "loglik": []})


def _latent_at(world: World, T: int) -> pd.DataFrame:
    hist = _outcomes(world)
    open_ = [a["account_id"] for a in world.accounts if a["open_date"] <= T]
    ids = np.array(sorted(open_), dtype=np.int64)
    X = _fixed_filter().transform(hist, ids, np.full(len(ids), np.datetime64(_day(T), "D")))
    return pd.DataFrame(X, index=ids)


@PIT
@given(histories_with_future())
def test_events_after_as_of_never_change_the_latent_features(case):
    world, T, rewritten = case
    seen = _latent_at(known_at(world, T), T)
    assert np.isfinite(seen.to_numpy()).all()
    pd.testing.assert_frame_equal(_latent_at(rewritten, T), seen, check_exact=True)
    pd.testing.assert_frame_equal(_latent_at(world, T), seen, check_exact=True)


def test_a_customer_sample_keeps_every_account_of_each_customer_drawn():
    from models.latent_state import Customers

    ids = np.array([5, 1, 5, 2, 9, 9, 9, 2])
    group = Customers.group(ids, np.zeros(len(ids), np.int64))
    part = group.sample(2, seed=3)
    assert len(part.start) == 3
    drawn = [ids[part.order[part.start[c]:part.start[c + 1]]] for c in range(2)]
    for accounts in drawn:
        assert len(set(accounts)) == 1 and len(accounts) == (ids == accounts[0]).sum()
    assert group.sample(10, seed=3) is group
