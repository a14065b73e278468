"""The explanation section's numbers (models/explain.py), on small synthetic data and boosters trained here.

Each number is held against LightGBM itself (gain importances, `pred_contrib` TreeSHAP, `predict(raw_score=True)`
row by row) or against a plain loop; the monotonicity check is shown to pass on a constrained booster and to
fail on an unconstrained one fitted to a U-shaped relation, so it can fail.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

from features.catalog import Catalog, Feature
from models.bundle import TargetModel
from models.calibration import Calibrator
from models.explain import (
    ExplainError,
    declared_constraints,
    importance,
    monotonicity_sweep,
    reason_frequencies,
    trained_constraints,
)
from models.lgbm import fit_booster, lgb_params, sample_rows

NAMES = ["u_shaped", "rising", "falling", "noise"]
CATALOG = Catalog(tuple(Feature(n, f"{n.replace('_', ' ')} signal", risk, "test")
                        for n, risk in zip(NAMES, [1, 1, -1, 0], strict=True)))


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Risk U-shaped in the first feature, rising in the second, falling in the third; the fourth is noise.
    A tenth of the first feature is missing."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logit = 1.5 * (X[:, 0] ** 2 - 1) + X[:, 1] - X[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    X[rng.random(n) < 0.1, 0] = np.nan
    return pd.DataFrame(X, columns=NAMES), y


def _model(monotone: list[int]) -> TargetModel:
    X, y = _data(4000, seed=1)
    fit = fit_booster(X[:3000], y[:3000], X[3000:], y[3000:], lgb_params(monotone, 0, {"min_data_in_leaf": 20}),
                      num_boost_round=150, early_stopping=20)
    return TargetModel.from_booster("default", fit.booster, Calibrator(), fit.best_iteration)


def _isotonic(model: TargetModel) -> Calibrator:
    """An isotonic map fitted by scikit-learn on held-out rows, stored as the bundle stores one."""
    held, y = _data(3000, seed=2)
    fitted = IsotonicRegression(out_of_bounds="clip").fit(model.booster.predict(held.to_numpy()), y)
    return Calibrator("isotonic", {"x": fitted.X_thresholds_.tolist(), "y": fitted.y_thresholds_.tolist()})


@pytest.fixture(scope="module")
def constrained() -> TargetModel:
    return _model([1, 1, -1, 0])


@pytest.fixture(scope="module")
def unconstrained() -> TargetModel:
    return _model([0, 0, 0, 0])


@pytest.fixture(scope="module")
def review() -> pd.DataFrame:
    return _data(2500, seed=3)[0]


def test_importance_is_lightgbms_gain_share_and_mean_absolute_pred_contrib_on_the_seeded_sample(constrained, review):
    table = importance(constrained, review, max_rows=1000, catalog=CATALOG, seed=7).set_index("feature")
    booster = constrained.booster
    gain = booster.feature_importance(importance_type="gain")
    np.testing.assert_allclose(table.loc[NAMES, "gain_share"], gain / gain.sum(), rtol=1e-12)
    rows = sample_rows(np.arange(len(review)), 1000, 7)
    shap = booster.predict(review.to_numpy()[rows], pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(table.loc[NAMES, "mean_abs_shap"], np.abs(shap).mean(axis=0), rtol=1e-9, atol=1e-12)
    assert table["shap_share"].sum() == pytest.approx(1.0)
    assert (table["rows"] == 1000).all()
    assert table.loc["rising", "description"] == "rising signal"


def test_importance_ranks_by_mean_absolute_shap_and_the_noise_feature_last(constrained, review):
    table = importance(constrained, review, catalog=CATALOG)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["feature"].iloc[-1] == "noise"
    assert (table["rows"] == len(review)).all()  # fewer rows than max_rows: all of them


def test_importance_samples_the_same_rows_for_the_same_seed_and_other_rows_for_another(constrained, review):
    one, again = (importance(constrained, review, max_rows=300, catalog=CATALOG, seed=1) for _ in range(2))
    other = importance(constrained, review, max_rows=300, catalog=CATALOG, seed=2)
    pd.testing.assert_frame_equal(one, again)
    assert not np.allclose(one.set_index("feature")["mean_abs_shap"].loc[NAMES],
                           other.set_index("feature")["mean_abs_shap"].loc[NAMES])


def test_the_constraints_are_read_from_the_model_text_as_trained(constrained, unconstrained):
    assert trained_constraints(constrained) == dict(zip(NAMES, [1, 1, -1, 0], strict=True))
    assert trained_constraints(unconstrained) == dict.fromkeys(NAMES, 0)


def test_declared_constraints_follow_the_catalog_and_reverse_for_the_good_outcome_target(constrained):
    assert declared_constraints(constrained, CATALOG) == {"u_shaped": 1, "rising": 1, "falling": -1, "noise": 0}
    cure = TargetModel("self_cure", constrained.text, Calibrator(), constrained.best_iteration)
    assert declared_constraints(cure, CATALOG) == {"u_shaped": -1, "rising": -1, "falling": 1, "noise": 0}
    with pytest.raises(ExplainError, match=r"lacks 1 feature.*noise"):
        declared_constraints(constrained, Catalog(CATALOG.features[:3]))


@pytest.mark.parametrize("calibration", ["isotonic", "platt"])
def test_a_booster_trained_with_monotone_constraints_never_moves_against_them(constrained, review, calibration):
    calibrator = _isotonic(constrained) if calibration == "isotonic" else Calibrator("platt", {"a": 1.3, "b": -0.2})
    model = TargetModel("default", constrained.text, calibrator, constrained.best_iteration)
    sweep = monotonicity_sweep(model, review, grid=20, max_rows=2000)
    assert sweep["feature"].tolist() == ["u_shaped", "rising", "falling"]  # the constrained ones, noise left out
    assert (sweep["constraint"] == sweep["trained"]).all()
    assert (sweep["steps"] > 0).all()
    violations = sweep.filter(like="violating")
    assert (violations == 0).all().all(), sweep
    assert (sweep[["raw_worst", "calibrated_worst"]] == 0).all().all()


def test_an_unconstrained_booster_on_a_u_shaped_relation_violates_the_declared_rising_direction(unconstrained,
                                                                                                review):
    assert monotonicity_sweep(unconstrained, review).empty  # trained with none: nothing to check
    sweep = monotonicity_sweep(unconstrained, review, declared_constraints(unconstrained, CATALOG)).set_index("feature")
    assert (sweep["trained"] == 0).all()
    u = sweep.loc["u_shaped"]
    assert u["raw_violating_rows"] > 0.9 * u["rows"]  # every curve falls on the left half of the U
    assert u["raw_worst"] > 0.5
    assert u["calibrated_violating_rows"] > 0.9 * u["rows"]


def test_the_sweep_counts_what_lightgbm_predicts_row_by_row(unconstrained, review):
    """A plain loop: each sampled row, each grid point, LightGBM's own raw score."""
    constraints = {"u_shaped": 1, "falling": 1}
    sweep = monotonicity_sweep(unconstrained, review, constraints, grid=8, max_rows=60, seed=5).set_index("feature")
    values = review.to_numpy()[sample_rows(np.arange(len(review)), 60, 5)]
    for j, name in enumerate(NAMES):
        if name not in constraints:
            continue
        observed = values[~np.isnan(values[:, j]), j]
        points = np.quantile(observed, np.linspace(0, 1, 8), method="inverted_cdf")
        bad_rows = bad_steps = 0
        for row in values:
            curve = []
            for p in points:
                x = row.copy()
                x[j] = p
                curve.append(unconstrained.booster.predict(x[None, :], raw_score=True)[0])
            against = -np.diff(curve) > 1e-9
            bad_rows, bad_steps = bad_rows + against.any(), bad_steps + against.sum()
        assert (sweep.loc[name, "raw_violating_rows"], sweep.loc[name, "raw_violating_steps"]) == (bad_rows, bad_steps)
        assert sweep.loc[name, "missing_rows"] == np.isnan(values[:, j]).sum()
        assert sweep.loc[name, "steps"] == 60 * (len(np.unique(points)) - 1)


def test_a_feature_of_few_values_is_swept_over_its_distinct_values_and_a_constant_one_makes_no_step(constrained,
                                                                                                   review):
    rows = review.copy()
    rows["rising"] = np.round(rows["rising"]).clip(-2, 2)  # five values
    rows["falling"] = 0.5
    sweep = monotonicity_sweep(constrained, rows, max_rows=500).set_index("feature")
    assert sweep.loc["rising", ["grid_points", "steps"]].tolist() == [5, 500 * 4]
    assert sweep.loc["falling", ["grid_points", "steps", "raw_violating_steps", "raw_worst"]].tolist() == [1, 0, 0, 0]
    assert sweep.loc["u_shaped", "grid_points"] == 20


def test_a_decreasing_calibrator_is_caught_on_the_calibrated_probability_alone(constrained, review):
    flipped = TargetModel("default", constrained.text, Calibrator("platt", {"a": -1.0, "b": 0.0}), 1)
    sweep = monotonicity_sweep(flipped, review, max_rows=300)
    assert (sweep["raw_violating_steps"] == 0).all()
    assert (sweep["calibrated_violating_rows"] > 0).all()


def test_the_sweep_refuses_review_rows_without_the_models_features_and_bad_constraints(constrained, review):
    with pytest.raises(ExplainError, match=r"lack 1 feature.*noise"):
        monotonicity_sweep(constrained, review.drop(columns="noise"))
    with pytest.raises(ExplainError, match=r"not -1, 0 or \+1: rising"):
        monotonicity_sweep(constrained, review, {"rising": 2})
    with pytest.raises(ExplainError, match="not features of the model: income"):
        monotonicity_sweep(constrained, review, {"income": 1})


def _scored(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = np.array(["R01", "R02", "R03", "R07", "P01", "", None], dtype=object)
    frame = pd.DataFrame({"adverse": rng.random(n) < 0.6})
    for i in range(1, 5):
        frame[f"reason_{i}"] = codes[rng.integers(0, len(codes), n)]
        frame[f"reason_text_{i}"] = [f"text of {c}" if c else c for c in frame[f"reason_{i}"]]
    return frame


def test_reason_frequencies_count_adverse_rows_by_first_and_any_slot_as_a_plain_loop_does():
    frame = _scored(3000, seed=4)
    table = reason_frequencies(frame).set_index("reason")
    anywhere, first, adverse = Counter(), Counter(), 0
    for row in frame.itertuples():
        if not row.adverse:
            continue
        adverse += 1
        given = [c if isinstance(c, str) and c else None for c in (getattr(row, f"reason_{i}") for i in range(1, 5))]
        anywhere.update({c for c in given if c})
        first.update([given[0]] if given[0] else [])
    assert dict(table["rows"]) == dict(anywhere)
    assert dict(table["first"]) == {c: first.get(c, 0) for c in anywhere}
    np.testing.assert_allclose(table["share"], table["rows"] / adverse)
    np.testing.assert_allclose(table["first_share"], table["first"] / adverse)
    assert (table["adverse"] == adverse).all()
    assert table["rows"].is_monotonic_decreasing
    assert all(table.loc[c, "text"] == f"text of {c}" for c in table.index)


def test_reason_frequencies_of_a_small_output_by_hand():
    frame = pd.DataFrame({
        "adverse": [True, True, False, True],
        "reason_1": ["P01", "R03", "R03", ""], "reason_2": ["R03", "R03", "R03", None],
        "reason_3": ["R07", "", "R03", None], "reason_4": ["", "", "R03", None],
    })
    for i in range(1, 5):
        frame[f"reason_text_{i}"] = frame[f"reason_{i}"]
    table = reason_frequencies(frame)
    assert table[["reason", "rows", "first"]].values.tolist() == [["R03", 2, 1], ["P01", 1, 1], ["R07", 1, 0]]
    assert table["share"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])


def test_reason_frequencies_name_the_columns_a_scoring_output_lacks():
    with pytest.raises(ExplainError, match="lacks reason_text_1"):
        reason_frequencies(_scored(10, seed=1).drop(columns="reason_text_1"))
