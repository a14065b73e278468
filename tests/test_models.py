"""Model building blocks and the training path on a generated world."""
from __future__ import annotations

import json
import re
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from features.builders import to_days
from features.catalog import default_catalog
from features.panel import Panel, month_end_of
from features.targets import TARGET_NAMES
from models.bundle import Bundle, BundleError, TargetModel, load_bundle
from models.calibration import Calibrator, fit_calibrator
from models.lgbm import fit_booster, lgb_params, sample_rows
from models.reasons import contributions, reason_codes, top_adverse
from models.scale import ScoreScale
from training.config import ConfigError, TrainConfig, load_config
from training.slices import plan_slices
from training.trainer import SAMPLE_ROWS, slice_rows, supplied_labels, train
from validation.metrics import reference_distribution


def _toy(n=6_000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"late_n6": rng.poisson(0.3, n).astype(float), "util_n3": rng.uniform(0, 1, n),
                      "tenure_days": rng.uniform(30, 2000, n)})
    z = -3 + 1.2 * X["late_n6"] + 1.5 * X["util_n3"] - 0.0005 * X["tenure_days"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
    return X, y.to_numpy()


def test_slices_are_ordered_with_an_embargo_between_them():
    months = pd.date_range("2023-01-31", periods=30, freq="ME")
    plan = plan_slices(months, embargo=6, valid=2, calib=2)
    spans = list(plan.months.values())
    assert list(plan.months) == ["train", "valid", "calib", "test"] and not plan.calib_split
    for (_, hi), (lo, _) in pairwise(spans):
        gap = months.get_loc(lo) - months.get_loc(hi) - 1
        assert gap == 6
    assert spans[-1][1] == months[-1]
    assignment = plan.assign(pd.Series(months))
    assert (assignment == "").sum() == 18 and (assignment == "test").sum() == 2
    with pytest.raises(ValueError, match="the slices in time need 27"):
        plan_slices(months[:20], embargo=6, valid=2, calib=2)


def test_default_slices_calibrate_on_an_account_disjoint_half_of_validation():
    months = pd.date_range("2023-01-31", periods=30, freq="ME")
    plan = plan_slices(months, embargo=6)  # train | 6 | valid (4) | 6 | test (2): two embargoes only
    assert plan.calib_split and plan.months["calib"] == plan.months["valid"]
    train_hi, valid_lo = plan.months["train"][1], plan.months["valid"][0]
    assert months.get_loc(valid_lo) - months.get_loc(train_hi) - 1 == 6
    assert months.get_loc(plan.months["test"][0]) - months.get_loc(plan.months["valid"][1]) - 1 == 6
    assert months.get_loc(train_hi) + 1 == 30 - 2 - 6 - 4 - 6  # 12 training months, not 4
    rows = pd.DataFrame([(a, m) for a in range(2_000) for m in months], columns=["account_id", "as_of"])
    part = plan.assign(rows["as_of"], rows["account_id"])
    in_valid = rows["as_of"].between(*plan.months["valid"])
    assert set(part[in_valid]) == {"valid", "calib"} and set(part[~in_valid]) <= {"train", "test", ""}
    by_account = pd.crosstab(rows.loc[in_valid, "account_id"], part[in_valid])
    assert ((by_account["valid"] == 0) | (by_account["calib"] == 0)).all()  # an account is on one side only
    assert 0.45 < (by_account["calib"] > 0).mean() < 0.55
    shuffled = rows.sample(frac=1.0, random_state=1)  # the same accounts calibrate in any row order
    assert (plan.assign(shuffled["as_of"], shuffled["account_id"]) == part.loc[shuffled.index]).all()
    with pytest.raises(ValueError, match="pass account_id"):
        plan.assign(rows["as_of"])
    for bad in ({"calib_months": -1}, {"valid_months": 0}, {"test_months": 1.5}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be a whole number of months"):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match=r"the slices in time need 21 \(3\+ train, 4 validation, 2 test and 2 6-month"):
        plan_slices(months[:20], embargo=6)


def test_score_scale_follows_pdo_and_counts_clipping():
    s = ScoreScale()
    assert s.raw(np.array([1 / 51]))[0] == pytest.approx(600.0)
    assert s.raw(np.array([1 / 101]))[0] == pytest.approx(640.0, abs=0.5)  # odds doubled: +40 points
    scores, clipped = s.score(np.array([1e-9, 0.02, 0.9999]))
    assert scores.tolist()[0] == 950 and scores.tolist()[-1] == 350 and clipped == 2
    np.testing.assert_allclose(s.probability(s.raw(np.array([0.05, 0.3]))), [0.05, 0.3])
    with pytest.raises(ValueError):
        ScoreScale(pdo=0)


def test_calibration_repairs_distorted_probabilities_and_round_trips_as_json():
    rng = np.random.default_rng(1)
    true_p = rng.uniform(0.01, 0.4, 20_000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(float)
    distorted = true_p ** 1.6
    cal = fit_calibrator(distorted, y)
    assert cal.method in ("platt", "isotonic")
    assert cal.cv_log_loss[cal.method] < cal.cv_log_loss["identity"]
    again = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(again.transform(distorted), cal.transform(distorted))
    assert abs(cal.transform(distorted).mean() - y.mean()) < 0.01
    with pytest.raises(ValueError, match="only one class"):
        fit_calibrator(distorted, np.zeros_like(y))


@pytest.mark.parametrize("n, slope, intercept", [(50_000, 0.8, -0.3), (2_000, 1.4, 0.5), (300, 2.0, -1.0)])
def test_platt_fit_is_the_logistic_regression_of_the_labels_on_the_logit(n, slope, intercept):
    """Platt scaling by Newton's method: the maximum-likelihood slope and intercept sklearn's solver finds."""
    from sklearn.linear_model import LogisticRegression

    from models.calibration import _logit, _platt

    rng = np.random.default_rng(n)
    z = _logit(1 / (1 + np.exp(-rng.normal(-3, 1.2, n))))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(slope * z + intercept)))).astype(float)
    a, b = _platt(z, y)
    lr = LogisticRegression(C=1e8, tol=1e-10, max_iter=10_000).fit(z[:, None], y)
    np.testing.assert_allclose([a, b], [lr.coef_[0, 0], lr.intercept_[0]], rtol=1e-4, atol=1e-4)
    # nearly separable labels: every step stays downhill and it stops at a finite fit
    sep = (z > -3).astype(float)
    sep[:3] = 1 - sep[:3]
    a, b = _platt(z, sep)
    assert np.isfinite([a, b]).all() and a > 1


def test_isotonic_calibration_keeps_the_ranking_and_fixes_the_shape():
    """Through the blocks' centres the isotonic map is strictly increasing inside its range: no plateaus of
    one probability for many scores, so the calibrated AUC is the raw one (a step function loses it)."""
    from sklearn.metrics import roc_auc_score

    from models.calibration import _fit

    rng = np.random.default_rng(2)
    true_p = rng.beta(1.2, 12, 40_000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(float)
    raw = np.sqrt(true_p) * 0.5  # over-confident, bent: not a logistic distortion
    cal = _fit("isotonic", raw, y)
    out = cal.transform(raw)
    inside = (raw > cal.params["x"][0]) & (raw < cal.params["x"][-1])
    order = np.argsort(raw[inside])
    assert len(np.unique(raw)) == raw.size  # no ties in the scores: none may appear in the probabilities
    assert (np.diff(out[inside][order]) > 0).all()
    assert len(np.unique(out)) > 0.9 * len(np.unique(raw))
    assert abs(roc_auc_score(y, out) - roc_auc_score(y, raw)) < 1e-4
    steps = np.asarray(cal.params["y"])
    assert (np.diff(steps) > 0).all() and (np.diff(cal.params["x"]) > 0).all()
    for lo, hi in ((0.0, 0.1), (0.1, 0.2), (0.2, 1.0)):  # calibrated by band
        band = (out >= lo) & (out < hi)
        assert abs(out[band].mean() - y[band].mean()) < 0.01


def test_same_data_and_seed_give_a_byte_identical_model():
    X, y = _toy()
    params = lgb_params([1, 1, -1], seed=3)
    a = fit_booster(X[:4000], y[:4000], X[4000:], y[4000:], params)
    b = fit_booster(X[:4000], y[:4000], X[4000:], y[4000:], params)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.best_iteration >= 1


def test_leaf_size_follows_small_training_slices_unless_set():
    assert lgb_params([1], 3)["min_data_in_leaf"] == 200  # no slice size given: the default
    sizes = {n: lgb_params([1], 3, train_rows=n)["min_data_in_leaf"] for n in (3_000_000, 200_000, 34_291, 5_000)}
    assert sizes == {3_000_000: 200, 200_000: 200, 34_291: 34, 5_000: 20}
    assert lgb_params([1], 3, {"min_data_in_leaf": 500}, train_rows=34_291)["min_data_in_leaf"] == 500
    chosen = lgb_params([1], 3, {"min_child_samples": 70}, train_rows=34_291)  # an alias counts as set
    assert chosen["min_child_samples"] == 70 and "min_data_in_leaf" not in chosen


def test_early_stopping_keeps_the_best_trees_and_their_validation_scores():
    import lightgbm as lgb

    X, y = _toy()
    params = lgb_params([1, 1, -1], seed=3, overrides={"learning_rate": 0.3})
    fit = fit_booster(X[:4000], y[:4000], X[4000:], y[4000:], params, early_stopping=10)
    # lightgbm's own early stopping on the same data stops at the same round with the same trees
    train = lgb.Dataset(X[:4000].to_numpy(), y[:4000], params=params)
    ref = lgb.train(params, train, 2000, valid_sets=[lgb.Dataset(X[4000:].to_numpy(), y[4000:], reference=train)],
                    callbacks=[lgb.early_stopping(10, verbose=False)])
    assert 1 <= fit.best_iteration == ref.best_iteration < 2000 - 10
    valid = X[4000:].to_numpy()
    np.testing.assert_array_equal(fit.booster.predict(valid), ref.predict(valid, num_iteration=ref.best_iteration))
    # the loss kept from training is the best iteration's validation log loss
    p = fit.booster.predict(valid)
    assert fit.valid_metric == "binary_logloss"
    assert fit.valid_loss == pytest.approx(-np.mean(y[4000:] * np.log(p) + (1 - y[4000:]) * np.log(1 - p)), rel=1e-9)


def test_slices_of_the_binned_panel_train_the_same_model_as_a_matrix():
    from features.panel import Panel
    from models import lgbm

    X, y = _toy(8_000)
    frame = X.assign(account_id=np.arange(len(X)), default=y)
    panel = Panel(frame, list(X.columns), pd.DataFrame())
    train_rows, valid_rows = np.arange(0, 6000, 2), np.arange(6001, 8000, 3)  # gathered, not contiguous
    params = lgb_params([1, 1, -1], seed=3)
    binned = lgbm.panel_dataset(panel, train_rows, params, seed=3)  # edges from the training rows only
    ours = lgbm.fit_datasets(lgbm.subset(binned, train_rows, y[train_rows], params),
                             lgbm.subset(binned, valid_rows, y[valid_rows], params), params)
    direct = fit_booster(X.iloc[train_rows], y[train_rows], X.iloc[valid_rows], y[valid_rows], params)
    assert ours.best_iteration == direct.best_iteration
    assert ours.booster.model_to_string() == direct.booster.model_to_string()
    assert ours.valid_loss == direct.valid_loss


def test_panel_values_are_the_frame_columns():
    from features.panel import Panel

    X, _ = _toy(500)
    panel = Panel(X.assign(account_id=np.arange(len(X))), list(X.columns), pd.DataFrame())  # values copied here
    assert panel.values.flags.c_contiguous and panel.values.shape == (3, 500)
    np.testing.assert_array_equal(panel.matrix, X.to_numpy())
    at = np.array([499, 3, 3, 0])
    np.testing.assert_array_equal(panel.rows(at), X.to_numpy()[at])
    with pytest.raises(ValueError, match="features, rows"):
        Panel(panel.frame, panel.feature_names, panel.counts, panel.values[:, :10])


def test_early_stopping_needs_a_validation_metric():
    X, y = _toy(3_000)
    with pytest.raises(ValueError, match="no validation metric"):
        fit_booster(X[:2000], y[:2000], X[2000:], y[2000:], lgb_params([1, 1, -1], 3, {"metric": "None"}))


def test_monotone_constraints_hold_in_the_fitted_model():
    X, y = _toy()
    fit = fit_booster(X[:4000], y[:4000], X[4000:], y[4000:], lgb_params([1, 1, -1], seed=3))
    grid = pd.DataFrame({"late_n6": np.repeat(np.arange(6.0), 1), "util_n3": 0.5, "tenure_days": 500.0})
    p = fit.booster.predict(grid.to_numpy())
    assert (np.diff(p) >= -1e-12).all()


def test_one_class_is_a_clear_error():
    X, y = _toy()
    with pytest.raises(ValueError, match="the training slice has only one class"):
        fit_booster(X, np.zeros(len(X)), X, y, lgb_params([0, 0, 0], seed=1))


def _bundle(tmp_path):
    X, y = _toy()
    fit = fit_booster(X[:4000], y[:4000], X[4000:], y[4000:], lgb_params([1, 1, -1], seed=3))
    cal = fit_calibrator(fit.booster.predict(X[4000:].to_numpy()), y[4000:])
    model = TargetModel.from_booster("default", fit.booster, cal, fit.best_iteration, {"auc": 0.8})
    bundle = Bundle({"default": model},
                    list(X.columns), "v-test", ScoreScale(), {"score": {"edges": [1.0]}}, {"data_fingerprint": "x"})
    return bundle, X, bundle.save(tmp_path / "bundle")


def test_bundle_round_trip_predicts_the_same_and_holds_no_pickle(tmp_path):
    bundle, X, path = _bundle(tmp_path)
    loaded = load_bundle(path)
    pd.testing.assert_frame_equal(loaded.predict(X), bundle.predict(X))
    assert set(loaded.predict(X).columns) == {"pd_default", "score"}
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "default.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_a_changed_bundle_file_is_refused(tmp_path):
    _, _, path = _bundle(tmp_path)
    model = path / "default.txt"
    model.write_text(model.read_text().replace("shrinkage=", "shrinkage=0", 1))
    with pytest.raises(BundleError, match="SHA-256 mismatch"):
        load_bundle(path)


def test_a_bundle_on_any_subset_of_the_catalog_loads_and_a_changed_feature_is_refused_by_name(tmp_path):
    bundle, X, _ = _bundle(tmp_path)
    catalog = default_catalog()
    prints = catalog.fingerprints()
    bundle.fingerprints = {n: prints[n] for n in X.columns if n in prints}
    assert bundle.fingerprints, "the toy model reads catalog features"
    ok = load_bundle(bundle.save(tmp_path / "ok"), catalog)  # a subset of today's catalog, in its own order
    assert ok.fingerprints == bundle.fingerprints and ok.feature_names == list(X.columns)
    moved = next(iter(bundle.fingerprints))
    bundle.fingerprints = {**bundle.fingerprints, moved: "0" * 16}
    with pytest.raises(BundleError, match=f"computed differently since training .*{moved}"):
        load_bundle(bundle.save(tmp_path / "moved"), catalog)


def test_changed_metadata_is_refused(tmp_path):
    _, _, path = _bundle(tmp_path)
    meta = json.loads((path / "bundle.json").read_text())
    meta["score_scale"]["pdo"] = 20.0
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_reason_codes_are_the_largest_adverse_treeshap_contributions(tmp_path):
    bundle, X, _ = _bundle(tmp_path)
    booster = bundle.models["default"].booster
    contrib = contributions(booster, X)
    margin = booster.predict(X.to_numpy(), raw_score=True)
    full = booster.predict(X.to_numpy(), pred_contrib=True)
    np.testing.assert_allclose(full.sum(axis=1), margin, rtol=1e-9, atol=1e-9)
    idx, vals = top_adverse(contrib, top=2)
    assert ((idx >= 0) == (vals > 0)).all()
    row = int(np.argmax(contrib[:, 0]))
    catalog = default_catalog()
    codes = reason_codes(booster, X, catalog, top=2)
    assert codes.loc[row, "reason_1"] == f"R{catalog.names.index('late_n6') + 1:02d}"
    late = X.loc[row, "late_n6"]
    assert codes.loc[row, "reason_text_1"] == f"{late:.0f} of the last 6 bills {'was' if late == 1 else 'were'} late " \
        "(paid late or still unpaid)"
    none = contrib.max(axis=1) <= 0
    assert (codes.loc[none, "reason_1"] == "").all()


def test_config_refuses_unknown_keys_and_fixed_settings(tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text('[train]\nseed = 5\ntargets = ["default"]\n[lightgbm]\nnum_leaves = 15\n[score_scale]\npdo = 20\n')
    train_cfg, promotion = load_config(cfg)
    assert train_cfg.seed == 5 and train_cfg.lgb_params == {"num_leaves": 15} and train_cfg.scale.pdo == 20
    assert promotion == {"ece_tolerance": 0.005}
    cfg.write_text("[train]\nseeds = 5\n")
    with pytest.raises(ConfigError, match=r"\[train\] has unknown key\(s\) seeds"):
        load_config(cfg)
    cfg.write_text("[lightgbm]\nnum_threads = 8\n")
    with pytest.raises(ConfigError, match="cannot set num_threads"):
        load_config(cfg)
    cfg.write_text("[train]\nlatent_state = 'yes'\n")
    with pytest.raises(ConfigError, match="latent_state must be true or false"):
        load_config(cfg)
    cfg.write_text("[train]\ntargets = ['profit']\n")
    with pytest.raises(ConfigError, match="unknown target"):
        load_config(cfg)


@pytest.fixture(scope="module")
def plain(baseline_tables):
    """The default target trained without the latent-state filter (the configuration's default). Its tests compare
    rows, feature lists and the figures promotion logs, never its fit: 40 rounds do."""
    return train(baseline_tables, TrainConfig(targets=("default",), n_boot=20, num_boost_round=40),
                 progress=lambda _: None)


def test_a_target_s_model_is_the_same_bytes_whatever_targets_run_beside_it(baseline_tables):
    """Bin edges, the drift reference and the panel come from rows no choice of targets changes."""
    quick = {"n_boot": 5, "num_boost_round": 40}
    alone = train(baseline_tables, TrainConfig(targets=("default",), **quick), progress=lambda _: None)
    beside = train(baseline_tables, TrainConfig(targets=("self_cure", "default"), **quick), progress=lambda _: None)
    assert alone.bundle.models["default"].text == beside.bundle.models["default"].text
    assert alone.bundle.reference["features"] == beside.bundle.reference["features"]
    assert alone.targets["default"].metrics["test"]["auc"] == beside.targets["default"].metrics["test"]["auc"]


def test_a_good_outcome_s_model_runs_against_the_features_risk_directions(trained):
    """Self-cure's 1 is the good outcome: its chance must fall where a feature's risk rises."""
    def constraints(target: str) -> list[int]:
        line = next(x for x in trained.bundle.models[target].text.splitlines() if x.startswith("monotone_constraints="))
        return [int(v) for v in line.split("=", 1)[1].split()]

    risk = constraints("default")
    assert any(risk) and constraints("self_cure") == [-v for v in risk]


def test_training_on_the_world_is_validated_calibrated_and_close_to_the_oracle(trained):
    r = trained.targets["default"]
    m = r.metrics["test"]
    assert m["auc"] > 0.75 and m["auc_lo"] < m["auc"] < m["auc_hi"]
    assert r.oracle["auc_ratio"] > 0.93, r.oracle
    # calibrated in the large on months it never saw (the decile goal is measured by `python -m bench train`)
    assert m["ece"] < 0.01, r.calibration
    assert abs(r.predictions["p"].mean() / r.predictions["y"].mean() - 1) < 0.15
    assert r.scorecard["test"]["auc"] > 0.65
    # the bundle predicts what training measured on the out-of-time rows
    p = trained.bundle.predict(r.test_features)["pd_default"].to_numpy()
    np.testing.assert_allclose(p, r.predictions["p"].to_numpy())
    assert trained.bundle.targets == list(TrainConfig().targets)
    # calibration over time: every slice's rows, month by month, as measured pooled
    t = r.by_month
    assert set(t["slice"]) == set(r.rows) and list(t.columns[:2]) == ["slice", "as_of"]
    test = t[t["slice"] == "test"]
    assert test["n"].sum() == r.rows["test"] and test["bads"].sum() == r.predictions["y"].sum()
    assert test["as_of"].tolist() == sorted(pd.unique(month_end_of(r.predictions["as_of"].to_numpy())))
    assert np.average(test["predicted"], weights=test["n"]) == pytest.approx(r.predictions["p"].mean())
    # the drift reference of the score: the bundle's scores of the seeded training sample the metrics described
    sample = sample_rows(slice_rows(trained.panel, "default", r.plan)["train"], SAMPLE_ROWS, TrainConfig().seed)
    scores = trained.bundle.predict(pd.DataFrame(trained.panel.rows(sample), columns=trained.panel.feature_names))
    assert trained.bundle.reference["score"] == reference_distribution(scores["score"].to_numpy())


def test_the_latent_state_features_trained_on_are_the_ones_scoring_computes(trained, plain, baseline_tables):
    from features.builders import Prepared
    from features.outcomes import BillOutcomes
    from models.latent_state import LatentStateFilter, add_latent_features

    latent = LatentStateFilter.from_dict(trained.bundle.latent)
    names = list(latent.get_feature_names_out())
    assert trained.bundle.feature_names == default_catalog().names + names
    # fitted on what was known at the earliest training end, not later
    train_end = min(r.plan.months["train"][1] for r in trained.targets.values())
    assert np.datetime64(latent.fit_day_, "D") == np.datetime64(train_end.date(), "D")
    test = trained.targets["default"].test_features
    again = add_latent_features(test[["account_id", "as_of"]], BillOutcomes(Prepared(baseline_tables)), latent)
    np.testing.assert_allclose(again[names].to_numpy(), test[names].to_numpy(), rtol=0, atol=1e-12)
    assert plain.bundle.latent is None and plain.bundle.feature_names == default_catalog().names


def test_a_champion_with_a_latent_filter_of_its_own_is_rescored_through_it(trained, baseline_tables, tmp_path):
    import dataclasses

    from mlflow import MlflowClient

    from features.builders import Prepared
    from features.outcomes import BillOutcomes
    from models.latent_state import LatentStateFilter, add_latent_features
    from training.tracking import log_training
    from validation.metrics import auc

    # the champion: the same trees, but a filter whose habits come in another order (as another fit may give)
    own = dict(trained.bundle.latent)
    order = [2, 0, 1]
    S = own["n_states"]
    prior = np.asarray(own["prior"]).reshape(len(own["prior"]), 3, S)[:, order].reshape(len(own["prior"]), -1)
    own.update(prior=prior.tolist(), trans=np.asarray(own["trans"])[order].tolist(),
               emit=np.asarray(own["emit"])[order].tolist())
    champion = dataclasses.replace(trained, bundle=dataclasses.replace(trained.bundle, latent=own))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = log_training(champion, model_name="latent", experiment="latent", uri=uri)
    second = log_training(trained, model_name="latent", experiment="latent", uri=uri)
    assert first.alias == "champion"
    assert re.search(r"(beats|does not beat) the champion \(version 1\)", second.decision)  # compared
    got = MlflowClient(tracking_uri=uri).get_run(second.run_id).data.metrics
    r = trained.targets["default"]
    rows = add_latent_features(r.test_features, BillOutcomes(Prepared(baseline_tables)),
                               LatentStateFilter.from_dict(own))
    expect = auc(r.predictions["y"].to_numpy(), champion.bundle.predict(rows)["pd_default"].to_numpy())
    assert got["promotion/auc_champion"] == pytest.approx(expect, abs=1e-9)
    assert got["promotion/auc_new"] == pytest.approx(r.metrics["test"]["auc"], abs=1e-9)


def test_a_version_with_the_filter_and_one_without_are_compared_on_the_same_rows(trained, plain, baseline_tables,
                                                                                 tmp_path):
    import dataclasses

    from mlflow import MlflowClient

    from features.builders import Prepared
    from features.outcomes import BillOutcomes
    from models.latent_state import LatentStateFilter, add_latent_features
    from training.tracking import log_training
    from validation.metrics import auc

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    # promotion compares versions of the same targets: the filter's version as trained on default alone
    trained = dataclasses.replace(trained, bundle=dataclasses.replace(trained.bundle, models={
        "default": trained.bundle.models["default"]}), targets={"default": trained.targets["default"]})
    with_filter, without = trained.targets["default"], plain.targets["default"]
    assert without.predictions["account_id"].tolist() == with_filter.predictions["account_id"].tolist()
    y = with_filter.predictions["y"].to_numpy()
    # a champion without the filter reads the catalog's columns of the new version's rows
    log_training(plain, model_name="up", experiment="kinds", uri=uri)
    up = log_training(trained, model_name="up", experiment="kinds", uri=uri)
    assert re.search(r"(beats|does not beat) the champion \(version 1\)", up.decision), up.decision
    got = client.get_run(up.run_id).data.metrics
    assert got["promotion/auc_champion"] == pytest.approx(without.metrics["test"]["auc"], abs=1e-9)
    assert got["promotion/auc_new"] == pytest.approx(with_filter.metrics["test"]["auc"], abs=1e-9)
    # a champion with the filter computes its features from the histories for a new version without one
    log_training(trained, model_name="down", experiment="kinds", uri=uri)
    down = log_training(plain, model_name="down", experiment="kinds", uri=uri)
    assert re.search(r"(beats|does not beat) the champion \(version 1\)", down.decision), down.decision
    got = client.get_run(down.run_id).data.metrics
    rows = add_latent_features(without.test_features, BillOutcomes(Prepared(baseline_tables)),
                               LatentStateFilter.from_dict(trained.bundle.latent))
    expect = auc(y, trained.bundle.predict(rows)["pd_default"].to_numpy())
    assert expect == pytest.approx(with_filter.metrics["test"]["auc"], abs=1e-12)  # what its own training measured
    assert got["promotion/auc_champion"] == pytest.approx(expect, abs=1e-9)
    assert got["promotion/auc_new"] == pytest.approx(without.metrics["test"]["auc"], abs=1e-9)


def test_supplied_labels_give_the_same_model_as_derived_ones(baseline_tables, tmp_path):
    # write exactly the panel's usable default labels, then train on them from the file (a file's labels are
    # joined on month ends: the derived panel here is one of month ends too)
    from training.trainer import build_training_panel

    cfg = TrainConfig(targets=("default",), n_boot=50, num_boost_round=40, month_end_share=1.0)  # same trees: any count
    panel = build_training_panel(baseline_tables, cfg, default_catalog())
    labels = panel.frame.loc[panel.frame["default"].notna(), ["account_id", "as_of", "default"]]
    labels = labels.rename(columns={"default": "label"}).assign(target="default")
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    supplied = build_training_panel(baseline_tables, cfg, default_catalog(), supplied_labels(path))
    # the labelled rows, in the panel's order, their features views of one array (no second copy)
    expect = panel.frame[panel.frame["default"].notna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(supplied.frame[["account_id", "as_of", *panel.feature_names, "default"]], expect[
        ["account_id", "as_of", *panel.feature_names, "default"]], check_dtype=False)
    assert np.shares_memory(supplied.frame[panel.feature_names[0]].to_numpy(), supplied.values)
    result = train(baseline_tables, cfg, labels=supplied_labels(path), progress=lambda _: None)
    # the derived panel on the same rows (it also holds rows only other targets label: bin edges come from every
    # row of the panel up to the shared training end, so those rows would move them)
    keep = np.flatnonzero(panel.frame["default"].notna().to_numpy())
    same_rows = Panel.over(np.ascontiguousarray(panel.values[:, keep]), panel.feature_names,
                           panel.frame["account_id"].to_numpy()[keep], panel.frame["as_of"].to_numpy()[keep],
                           {t: panel.frame[t].to_numpy()[keep] for t in TARGET_NAMES}, panel.counts, panel.history)
    derived = train(baseline_tables, cfg, panel=same_rows, progress=lambda _: None)
    assert (result.bundle.models["default"].booster.model_to_string()
            == derived.bundle.models["default"].booster.model_to_string())
    assert result.bundle.info["label_source"] == "file"


def test_supplied_labels_with_bad_values_are_refused(tmp_path):
    path = tmp_path / "labels.csv"
    pd.DataFrame({"account_id": [1, 2], "as_of": ["2024-01-31"] * 2, "target": ["default", "profit"],
                  "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="target has unknown values in 1 rows"):
        supplied_labels(path)
    pd.DataFrame({"account_id": [1], "as_of": ["2024-01-31"], "target": ["default"], "label": [3]}).to_csv(path)
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        supplied_labels(path)
    pd.DataFrame({"account_id": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="lacks column"):
        supplied_labels(path)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("big_ids", [False, True])
def test_the_oracle_lookup_equals_a_join_with_truth(shuffle, big_ids):
    """Bayes-optimal probabilities are found by a sorted search of (account, as-of): the same values as a
    left join, NaN where truth has no row or no value, in either order of truth, and ids too large for
    the combined key take the join."""
    from features.key_lookup import value_at

    rng = np.random.default_rng(0)
    months = pd.date_range("2024-01-31", periods=12, freq="ME").values.astype("datetime64[s]")
    ids = np.arange(300) + (2**50 if big_ids else 0)
    truth = pd.DataFrame({"account_id": np.repeat(ids, 12), "as_of": np.tile(months, 300),
                          "p_default_bayes": rng.random(3600)})
    truth.loc[[5, 17], "p_default_bayes"] = np.nan
    rows = truth.sample(400, random_state=1)[["account_id", "as_of"]]
    rows = pd.concat([rows, pd.DataFrame({"account_id": [ids[-1] + 1, ids[0]], "as_of": months[[0, 0]]})],
                     ignore_index=True)
    rows.loc[len(rows) - 1, "as_of"] = np.datetime64("2030-01-31", "s")  # an account with no truth that month
    if shuffle:
        truth = truth.sample(frac=1, random_state=2)
    expected = rows.merge(truth, how="left", on=["account_id", "as_of"])["p_default_bayes"].to_numpy()
    got = value_at(truth, "p_default_bayes", rows)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[-2:]).all()


def test_supplied_labels_keep_their_rows_where_derived_windows_are_unfinished_and_name_what_cannot_be_used(
        baseline_tables):
    """Labels from outside as of the data's last month end: the derived labels' windows have not ended there,
    yet every labelled row of an account on the book gets its features. A row of an account gone by then is
    left out and counted; an account the data lack is refused by its id."""
    from features.builders import Prepared, build_features
    from training.trainer import build_training_panel

    prep = Prepared(baseline_tables)
    day = pd.Timestamp(prep.extraction.date()) - pd.offsets.MonthEnd(1)
    on_book = prep.account_id[prep.on_book(int(to_days(np.array([day.to_datetime64()]))[0]))][:300]
    gone = prep.account_id[prep.exit_day < int(to_days(np.array([day.to_datetime64()]))[0])][:5]
    rows = pd.DataFrame({"account_id": np.r_[on_book, gone], "as_of": day, "default": 0.0})
    rows.loc[::7, "default"] = 1.0
    cfg = TrainConfig(targets=("default",))
    panel = build_training_panel(baseline_tables, cfg, default_catalog(), rows)
    assert panel.frame["account_id"].tolist() == sorted(on_book.tolist())
    want = build_features(baseline_tables, pairs=rows.iloc[:300].sort_values("account_id"))
    np.testing.assert_array_equal(panel.frame[panel.feature_names].to_numpy(), want[panel.feature_names].to_numpy())
    counts = panel.counts.set_index("target")["usable"]
    assert counts["default"] == 300 and counts["(account not on the book that day: row left out)"] == len(gone)
    with pytest.raises(ValueError, match="account_id 999999999"):
        build_training_panel(baseline_tables, cfg, default_catalog(),
                             pd.DataFrame({"account_id": [999_999_999], "as_of": [day], "default": [1.0]}))
