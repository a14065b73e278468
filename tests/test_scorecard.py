"""The benchmark scorecard: monotone WOE bins, the logistic regression on them, points and persistence.

The data is a small synthetic world with a known logit, so each claim can be checked against the truth.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from features.catalog import default_catalog
from models.scorecard import MISSING, SCORE_MAX, SCORE_MIN, WOE_SMOOTHING, BenchmarkScorecard, WoeBinner

DECLARED = {"up": +1, "down": -1}


def make_world(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Features, labels (1 = bad) and the true signal's inputs.

    up: riskier when high (declared +1); down: riskier when low (declared -1), missing for 10% of rows
    who are riskier still; auto: riskier when low, not declared; count: a small count, riskier when high,
    not declared; noise: unrelated to the target.
    """
    rng = np.random.default_rng(seed)
    up, down, noise = rng.normal(size=(3, n))
    auto = rng.exponential(size=n)
    count = rng.poisson(1.0, size=n).astype(float)
    missing = rng.random(n) < 0.10
    logit = -2.4 + 1.0 * up - 0.8 * np.where(missing, 0.0, down) - 0.7 * auto + 0.4 * count + 1.0 * missing
    y = (rng.random(n) < expit(logit)).astype(np.int64)
    X = pd.DataFrame({"up": up, "down": np.where(missing, np.nan, down), "auto": auto, "count": count,
                      "noise": noise})
    signal = pd.DataFrame({"up": up, "down": np.where(missing, 0.0, down), "missing": missing.astype(float),
                           "auto": auto, "count": count})
    return X, y, signal


@pytest.fixture(scope="module")
def world():
    return make_world(30_000, seed=7)


@pytest.fixture(scope="module")
def holdout():
    return make_world(30_000, seed=8)


@pytest.fixture(scope="module")
def binner(world):
    X, y, _ = world
    return WoeBinner(monotone=DECLARED).fit(X, y)


@pytest.fixture(scope="module")
def card(world):
    X, y, _ = world
    return BenchmarkScorecard(monotone=DECLARED).fit(X, y)


def regular(table: pd.DataFrame) -> pd.DataFrame:
    """The binning table's rows for non-missing values."""
    return table[~table["bin"].isin([MISSING, "Totals"])]


def reference_slots(binner: WoeBinner, column: str, x: pd.Series) -> np.ndarray:
    """Bin index per row by pandas' own interval cut, independent of the binner's code; missing last."""
    fb = binner.bins_[column]
    codes = pd.cut(x, bins=[-np.inf, *fb.edges, np.inf], right=False, labels=False).to_numpy()
    return np.where(np.isnan(codes), fb.n_bins, codes).astype(np.int64)


# -- binning ----------------------------------------------------------------------------------------------

def test_bad_rate_is_strictly_monotone_in_each_declared_direction(binner):
    for column, direction in DECLARED.items():
        rates = regular(binner.binning_table(column))["bad_rate"].to_numpy()
        assert len(rates) >= 4, column
        assert np.all(direction * np.diff(rates) > 0), (column, rates)
        assert binner.directions_[column] == direction
        assert binner.bins_[column].declared


def test_undeclared_features_get_the_direction_of_their_relation(binner):
    assert binner.directions_["auto"] == -1 and not binner.bins_["auto"].declared
    assert binner.directions_["count"] == +1 and not binner.bins_["count"].declared
    for column in ("auto", "count"):
        rates = regular(binner.binning_table(column))["bad_rate"].to_numpy()
        assert np.all(binner.directions_[column] * np.diff(rates) > 0), (column, rates)


def test_direction_zero_means_undeclared(world):
    X, y, _ = world
    fitted = WoeBinner(monotone={"auto": 0}).fit(X[["auto"]], y)
    assert fitted.directions_["auto"] == -1 and not fitted.bins_["auto"].declared


def test_a_direction_declared_against_the_data_leaves_the_feature_without_information(world):
    X, y, _ = world
    fitted = WoeBinner(monotone={"up": -1}).fit(X[["up"]], y)
    assert fitted.bins_["up"].n_bins <= 2
    assert fitted.information_values_["up"] < 0.02


def test_missing_values_get_their_own_bin_with_their_own_woe(world, binner):
    X, y, _ = world
    table = binner.binning_table("down")
    row = table[table["bin"] == MISSING].iloc[0]
    is_missing = X["down"].isna().to_numpy()
    assert row["count"] == is_missing.sum() and row["bads"] == y[is_missing].sum()
    fb = binner.bins_["down"]
    k = fb.n_bins + 1  # every slot is occupied
    pct_good = (row["goods"] + WOE_SMOOTHING) / (fb.goods.sum() + WOE_SMOOTHING * k)
    pct_bad = (row["bads"] + WOE_SMOOTHING) / (fb.bads.sum() + WOE_SMOOTHING * k)
    assert row["woe"] == pytest.approx(np.log(pct_good / pct_bad), rel=1e-12)
    assert row["woe"] < -0.3  # the missing are riskier than average
    # no missing values in training: the missing bin is empty, WOE 0, and a NaN at transform time gets 0
    up = binner.binning_table("up")
    assert up.loc[up["bin"] == MISSING, ["count", "woe"]].to_numpy().tolist() == [[0, 0.0]]
    assert binner.transform(X.head(3).assign(up=np.nan))["up"].tolist() == [0.0, 0.0, 0.0]


def test_noise_has_no_information_and_a_strong_feature_has_much(binner):
    iv = binner.information_values_
    assert iv["noise"] < 0.01
    assert iv["up"] > 0.3
    assert list(iv.index) == list(iv.sort_values(ascending=False).index)
    assert iv.index[0] == "up"


@pytest.mark.parametrize(("min_bin_share", "max_bins"), [(0.05, 8), (0.12, 8), (0.02, 4)])
def test_every_bin_holds_min_bin_share_of_non_missing_rows_and_max_bins_holds(world, min_bin_share, max_bins):
    X, y, _ = world
    fitted = WoeBinner(min_bin_share=min_bin_share, max_bins=max_bins, monotone=DECLARED).fit(X, y)
    for column in X.columns:
        rows = regular(fitted.binning_table(column))
        assert len(rows) <= max_bins
        share = rows["count"] / X[column].notna().sum()
        assert share.min() >= min_bin_share or len(rows) == 1, (column, share.min())
        assert (rows["goods"] > 0).all() and (rows["bads"] > 0).all()


def test_binning_table_adds_up(binner, world):
    X, y, _ = world
    table = binner.binning_table("down")
    totals = table.iloc[-1]
    assert totals["bin"] == "Totals" and totals["count"] == len(X) and totals["bads"] == y.sum()
    assert table["iv"].iloc[:-1].sum() == pytest.approx(totals["iv"]) == pytest.approx(binner.bins_["down"].iv)
    assert table["bin"].iloc[0].startswith("(-inf, ") and table["bin"].iloc[-3].endswith(", inf)")


def test_transform_matches_the_binning_table(binner, holdout):
    X, _, _ = holdout
    woe = binner.transform(X)
    assert list(woe.columns) == list(X.columns) and woe.index.equals(X.index)
    for column in X.columns:
        table_woe = binner.binning_table(column)["woe"].to_numpy()
        expected = table_woe[reference_slots(binner, column, X[column])]
        np.testing.assert_array_equal(woe[column].to_numpy(), expected)


def test_binner_works_inside_a_pipeline_and_names_its_outputs(world):
    X, y, _ = world
    pipe = make_pipeline(WoeBinner(monotone=DECLARED), LogisticRegression()).fit(X, y)
    assert pipe.predict_proba(X).shape == (len(X), 2)
    assert list(pipe[0].get_feature_names_out()) == list(X.columns)


def test_catalog_directions_are_used_as_declared(world):
    X, y, _ = world
    frame = pd.DataFrame({"dpd_now": X["up"], "ontime_streak": X["auto"]})
    fitted = WoeBinner(monotone=default_catalog()).fit(frame, y)
    assert fitted.directions_.to_dict() == {"dpd_now": 1, "ontime_streak": -1}
    assert fitted.bins_["dpd_now"].declared and fitted.bins_["ontime_streak"].declared


# -- scorecard --------------------------------------------------------------------------------------------

def test_scorecard_ranks_held_out_accounts_about_as_well_as_a_logistic_regression_on_the_truth(world, holdout,
                                                                                                card):
    _, y, signal = world
    X_test, y_test, signal_test = holdout
    truth_model = LogisticRegression(max_iter=1000).fit(signal, y)
    auc_truth = roc_auc_score(y_test, truth_model.predict_proba(signal_test)[:, 1])
    auc_card = roc_auc_score(y_test, card.predict_proba(X_test)[:, 1])
    assert auc_card > 0.75
    assert auc_truth - auc_card < 0.015, (auc_card, auc_truth)
    assert "noise" not in card.features_ and "noise" in card.dropped_
    assert set(card.features_) == {"up", "down", "auto", "count"}


def test_scores_follow_the_scale_and_rise_with_odds(card, holdout):
    X, _, _ = holdout
    p_bad = card.predict_proba(X)[:, 1]
    raw = card.predict_score(X, clip=False)
    factor = 40.0 / np.log(2.0)
    np.testing.assert_allclose(raw, 600.0 - factor * np.log(50.0) + factor * np.log((1 - p_bad) / p_bad),
                               rtol=1e-9)
    score = card.predict_score(X)
    assert score.min() >= SCORE_MIN and score.max() <= SCORE_MAX
    assert np.all(np.diff(score[np.argsort(p_bad)]) <= 1e-9)  # riskier never scores higher


def test_points_table_reproduces_each_rows_unclipped_score(card, holdout):
    X, _, _ = holdout
    table = card.points_table()
    assert list(table.columns) == ["feature", "bin", "woe", "points"]
    total = np.zeros(len(X))
    for column in card.features_:
        points = table.loc[table["feature"] == column, "points"].to_numpy()
        total += points[reference_slots(card.binner_, column, X[column])]
    np.testing.assert_allclose(total, card.predict_score(X, clip=False), rtol=0, atol=1e-9)


def test_summary_shows_iv_and_coefficients_and_no_warning_for_a_clean_model(card):
    summary = card.summary()
    assert list(summary["feature"]) == card.features_
    assert (summary["coefficient"] < 0).all()  # higher WOE, fewer bads
    assert (summary["warning"] == "").all()
    assert summary.set_index("feature")["direction_source"].to_dict() == {
        "up": "declared", "down": "declared", "auto": "chosen", "count": "chosen"}


def test_summary_warns_when_a_coefficient_breaks_the_woe_direction():
    # x2 alone looks risky (it carries x1), but given x1 it lowers risk: its WOE coefficient turns positive
    rng = np.random.default_rng(3)
    x1 = rng.normal(size=40_000)
    x2 = x1 + 0.5 * rng.normal(size=40_000)
    y = (rng.random(40_000) < expit(-2.0 + 2.0 * x1 - 1.0 * x2)).astype(int)
    card = BenchmarkScorecard(max_corr=None).fit(pd.DataFrame({"x1": x1, "x2": x2}), y)
    summary = card.summary().set_index("feature")
    assert summary.loc["x2", "coefficient"] > 0 and "against" in summary.loc["x2", "warning"]
    assert summary.loc["x1", "warning"] == ""


def test_a_highly_correlated_feature_is_dropped_in_favour_of_the_higher_iv_one(world):
    X, y, _ = world
    rng = np.random.default_rng(1)
    X2 = X.assign(up_copy=X["up"] + 0.05 * rng.normal(size=len(X)))
    card = BenchmarkScorecard(monotone=DECLARED).fit(X2, y)
    kept, dropped = ("up", "up_copy") if "up" in card.features_ else ("up_copy", "up")
    assert dropped not in card.features_ and kept in card.dropped_[dropped]
    assert card.binner_.information_values_[kept] >= card.binner_.information_values_[dropped]


def test_max_features_keeps_the_highest_iv(world):
    X, y, _ = world
    card = BenchmarkScorecard(max_features=2, monotone=DECLARED).fit(X, y)
    assert card.features_ == list(card.binner_.information_values_.index[:2])


def test_json_round_trip_reproduces_predict_proba_exactly(card, holdout):
    X, _, _ = holdout
    text = json.dumps(card.to_dict(), allow_nan=False)
    restored = BenchmarkScorecard.from_dict(json.loads(text))
    np.testing.assert_array_equal(restored.predict_proba(X), card.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_score(X), card.predict_score(X))
    pd.testing.assert_frame_equal(restored.points_table(), card.points_table())
    pd.testing.assert_frame_equal(restored.binner_.binning_table("down"), card.binner_.binning_table("down"))
    assert restored.get_params() == card.get_params()


def test_json_round_trip_of_a_catalog_declared_binner(world):
    X, y, _ = world
    frame = pd.DataFrame({"dpd_now": X["up"]})
    fitted = WoeBinner(monotone=default_catalog()).fit(frame, y)
    restored = WoeBinner.from_dict(json.loads(json.dumps(fitted.to_dict(), allow_nan=False)))
    pd.testing.assert_frame_equal(restored.transform(frame), fitted.transform(frame))


def test_clone_and_get_params():
    card = BenchmarkScorecard(max_features=5, min_iv=0.05, C=0.5, monotone={"a": 1}, min_bin_share=0.1)
    twin = clone(card)
    assert twin.get_params() == card.get_params() and twin is not card
    assert twin.set_params(pdo=20.0).pdo == 20.0 and card.pdo == 40.0
    binner = WoeBinner(max_bins=5, monotone={"a": -1})
    assert clone(binner).get_params() == {"max_bins": 5, "min_bin_share": 0.05, "monotone": {"a": -1},
                                          "special_missing": True, "n_prebins": 20}
    assert not hasattr(clone(binner), "bins_")


# -- errors a user can act on -----------------------------------------------------------------------------

def test_one_class_only_is_refused(world):
    X, _, _ = world
    with pytest.raises(ValueError, match=r"only goods \(0\).*both classes"):
        WoeBinner().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"only bads \(1\)"):
        BenchmarkScorecard().fit(X, np.ones(len(X)))


def test_labels_other_than_zero_and_one_are_refused(world):
    X, y, _ = world
    with pytest.raises(ValueError, match="0 \\(good\\) and 1 \\(bad\\)"):
        WoeBinner().fit(X, y * 2)
    with pytest.raises(ValueError, match="missing labels"):
        WoeBinner().fit(X, np.where(np.arange(len(y)) == 5, np.nan, y))
    with pytest.raises(ValueError, match="y has 10 values but X has"):
        WoeBinner().fit(X, y[:10])


def test_non_numeric_columns_are_named(world):
    X, y, _ = world
    frame = X.assign(product="revolving", opened=pd.Timestamp("2024-01-01"))
    with pytest.raises(ValueError, match=r"2 non-numeric column\(s\): product .*, opened .*encode"):
        WoeBinner().fit(frame, y)


def test_nullable_and_boolean_columns_bin_like_floats(world):
    X, y, _ = world
    frame = pd.DataFrame({"count": X["count"].astype("Int64"), "flag": X["up"] > 1})
    frame.loc[frame.index[::50], "count"] = pd.NA
    fitted = WoeBinner().fit(frame, y)
    as_float = WoeBinner().fit(frame.astype(float), y)
    pd.testing.assert_frame_equal(fitted.transform(frame), as_float.transform(frame.astype(float)))
    assert fitted.binning_table("count").set_index("bin").loc[MISSING, "count"] == len(frame.index[::50])
    assert fitted.bins_["flag"].n_bins == 2


def test_missing_target_and_sparse_input_are_refused(world):
    X, _, _ = world
    with pytest.raises(ValueError, match="requires y to be passed"):
        WoeBinner().fit(X, None)
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse input is not supported"):
        WoeBinner().fit(sparse.csr_matrix(np.eye(4)), [0, 1, 0, 1])


def test_empty_x_is_refused():
    with pytest.raises(ValueError, match="X has no rows"):
        WoeBinner().fit(pd.DataFrame({"a": pd.Series([], dtype=float)}), [])
    with pytest.raises(ValueError, match=r"X has 0 feature\(s\)"):
        BenchmarkScorecard().fit(pd.DataFrame(index=range(5)), [0, 1, 0, 1, 0])


@pytest.mark.parametrize(("params", "message"), [
    ({"max_bins": 1}, "max_bins must be an integer >= 2"),
    ({"min_bin_share": 0.7}, r"min_bin_share must be a finite number in \(0.0, 0.5\]"),
    ({"n_prebins": 2.5}, "n_prebins must be an integer"),
    ({"monotone": {"up": 2}}, "monotone directions must be -1, 0 or \\+1; got up=2"),
    ({"monotone": [1, -1]}, "monotone must be a mapping"),
    ({"special_missing": "yes"}, "special_missing must be True or False"),
])
def test_bad_binner_parameters_are_explained(world, params, message):
    X, y, _ = world
    with pytest.raises((ValueError, TypeError), match=message):
        WoeBinner(**params).fit(X, y)


@pytest.mark.parametrize(("params", "message"), [
    ({"max_features": 0}, "max_features must be an integer >= 1"),
    ({"C": 0}, "C must be a finite number"),
    ({"pdo": -20}, "pdo must be a finite number"),
    ({"max_corr": 1.5}, "max_corr must be a finite number"),
    ({"min_iv": 5.0}, "no column has IV >= min_iv=5.0"),
])
def test_bad_scorecard_parameters_are_explained(world, params, message):
    X, y, _ = world
    with pytest.raises(ValueError, match=message):
        BenchmarkScorecard(**params).fit(X.head(2000), y[:2000])


def test_missing_values_are_refused_when_they_may_not_have_a_bin(world):
    X, y, _ = world
    with pytest.raises(ValueError, match=r"missing values in down \(.* rows\) but special_missing=False"):
        WoeBinner(special_missing=False).fit(X, y)
    fitted = WoeBinner(special_missing=False).fit(X.drop(columns="down"), y)
    assert fitted.binning_table("up")["bin"].iloc[-2] == MISSING


def test_unfitted_and_mismatched_inputs_are_refused(binner, world):
    X, _, _ = world
    with pytest.raises(NotFittedError, match="call fit"):
        WoeBinner().transform(X)
    with pytest.raises(NotFittedError, match="call fit"):
        BenchmarkScorecard().predict_proba(X)
    with pytest.raises(ValueError, match=r"X lacks 1 fitted column\(s\): \['noise'\]"):
        binner.transform(X.drop(columns="noise"))
    with pytest.raises(KeyError, match="no binning for 'nope'"):
        binner.binning_table("nope")
