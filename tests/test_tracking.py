"""Tracking: runs logged to mlflow, models registered from code, champion/challenger decided on evidence.

A small synthetic panel (1,500 accounts x 14 month ends, five features) stands in for the feature panel;
TrainResults are assembled from boosters trained here, with a knob that scrambles a share of the training
labels: the more scrambled, the worse the model, which is all promotion needs to see.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from models.bundle import Bundle, TargetModel
from models.calibration import Calibrator, fit_calibrator
from models.lgbm import fit_booster, lgb_params
from models.registry import DEFAULT_URI, TrackingError, check_server, load_model_bundle, tracking_uri
from models.scale import ScoreScale
from training.config import TrainConfig
from training.promotion import Comparison, compare
from training.slices import SLICES, plan_slices
from training.tracking import log_training
from training.trainer import TargetResult, TrainResult
from validation.metrics import auc, calibration_by_period, calibration_table, metric_set

FEATURES = ["lag1_n6", "dpd_worst_12", "util", "pay_ratio", "days_since_late"]
RISK = [+1, +1, +1, -1, -1]
TARGETS = ("default", "early_warning", "self_cure")
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


# --- a tiny world -----------------------------------------------------------------------------------------
def make_panel() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n_acc, months = 1500, 14
    as_of = pd.date_range("2022-01-31", periods=months, freq="ME")
    n = n_acc * months
    latent = np.repeat(rng.normal(size=n_acc), months)
    X = rng.normal(size=(n, len(FEATURES)))
    X[:, 0] += 0.7 * latent
    X[:, 4] = np.where(rng.random(n) < 0.15, np.nan, X[:, 4])  # never late: no "days since last late"
    z = -2.6 + 0.9 * X[:, 0] + 0.6 * X[:, 1] + 0.3 * X[:, 2] - 0.5 * X[:, 3] + 0.5 * latent
    frame = pd.DataFrame(X, columns=FEATURES)
    frame.insert(0, "as_of", np.tile(as_of.to_numpy(), n_acc))
    frame.insert(0, "account_id", np.repeat(np.arange(n_acc), months))
    frame["p_default_true"] = 1 / (1 + np.exp(-z))
    frame["default"] = (rng.random(n) < frame["p_default_true"]).astype(float)
    frame["early_warning"] = (rng.random(n) < 1 / (1 + np.exp(-(z + 1.5)))).astype(float)
    frame["self_cure"] = (rng.random(n) < 1 / (1 + np.exp(-(0.4 - 0.8 * X[:, 0])))).astype(float)
    return frame


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel()


def _plan(panel):
    return plan_slices(panel["as_of"].unique(), embargo=1)


def _oot(panel) -> pd.DataFrame:
    return panel[_plan(panel).assign(panel["as_of"], panel["account_id"]) == "test"].reset_index(drop=True)


def _train(panel: pd.DataFrame, scramble: float, features=FEATURES, seed: int = 7) -> TrainResult:
    """A TrainResult as training.trainer.train builds it, with `scramble` of the fit labels shuffled."""
    rng = np.random.default_rng(seed)
    plan = _plan(panel)
    part = plan.assign(panel["as_of"], panel["account_id"])
    models, results = {}, {}
    for target in TARGETS:
        X = {s: panel.loc[part == s, features] for s in SLICES}
        y = {s: panel.loc[part == s, target].to_numpy(np.float64) for s in SLICES}
        fit_y = {}
        for s in ("train", "valid"):
            mix = rng.random(len(y[s])) < scramble
            fit_y[s] = np.where(mix, rng.permutation(y[s]), y[s])
        mono = [RISK[FEATURES.index(f)] for f in features] if target != "self_cure" else [0] * len(features)
        params = lgb_params(mono, seed, {"min_data_in_leaf": 50, "learning_rate": 0.1, "num_leaves": 7, "max_depth": 3,
                                          "monotone_constraints_method": "basic"})
        params["num_threads"] = 1  # two shared cores: OpenMP threads fighting other jobs make it 5x slower
        fit = fit_booster(X["train"], fit_y["train"], X["valid"], fit_y["valid"], params, 200, 15)
        raw = {s: fit.booster.predict(X[s].to_numpy(np.float64)) for s in SLICES}
        cal = fit_calibrator(raw["calib"], y["calib"], seed)
        p = {s: cal.transform(raw[s]) for s in SLICES}
        groups = panel.loc[part == "test", "account_id"].to_numpy()
        metrics = {s: metric_set(y[s], p[s], groups if s == "test" else None, n_boot=30) for s in SLICES}
        card = LogisticRegression(max_iter=200).fit(X["train"].fillna(0), y["train"])
        card_p = card.predict_proba(X["test"].fillna(0))[:, 1]
        # as training.trainer keeps them, plus the feature columns that let promotion re-score the champion
        test = panel.loc[part == "test", ["account_id", "as_of", *features]].assign(y=y["test"], p=p["test"],
                                                                                    scorecard_p=card_p)
        oracle = {}
        if target == "default":
            q = panel.loc[part == "test", "p_default_true"].to_numpy()
            oracle = {"rows": len(q), "model_auc": auc(y["test"], p["test"]), "oracle_auc": auc(y["test"], q)}
            oracle["auc_ratio"] = oracle["model_auc"] / oracle["oracle_auc"]
        models[target] = TargetModel.from_booster(target, fit.booster, cal, fit.best_iteration,
                                     {s: {k: v for k, v in m.items()} for s, m in metrics.items()})
        results[target] = TargetResult(target, plan, {s: len(y[s]) for s in SLICES}, metrics,
                                       {"test": metric_set(y["test"], card_p, groups, n_boot=30)},
                                       calibration_table(y["test"], p["test"]), oracle, test, 0.1,
                                       fit.best_iteration, params, None,
                                       panel.loc[part == "test", ["account_id", "as_of", *features]],
                                       by_month=calibration_by_period(y["test"], p["test"],
                                                                      test["as_of"]).assign(slice="test"))
    fp = f"synthetic-{seed}"
    bundle = Bundle(models, list(features), "test-catalog-1", ScoreScale(), {"features": {}},
                    {"data_fingerprint": fp})
    counts = pd.DataFrame({"target": list(TARGETS), "usable": [len(panel)] * len(TARGETS)})
    return TrainResult(bundle, results, counts, {"panel_s": 0.1, "fit_s": 0.2}, fp)


# --- one store, three versions: champion, a worse challenger, a better champion ----------------------------
# ECE over 10 equal-frequency bins of 3,000 out-of-time rows (300 a bin, ~6 % bad) varies by about 0.01
# between samples: the production default (0.005, for hundreds of thousands of rows) is below the noise here
TOLERANCE_ECE = 0.01


@pytest.fixture(scope="module")
def store(tmp_path_factory, panel):
    tmp = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{tmp}/mlflow.db"
    report = tmp / "report.html"
    report.write_text("<html><body>validation report</body></html>")
    docs = tmp / "features.md"
    docs.write_text("# Feature catalog\n")
    oot = _oot(panel)
    runs, results, seconds = {}, {}, {}
    for label, scramble in (("first", 0.9), ("worse", 1.0), ("better", 0.0)):
        results[label] = _train(panel, scramble)
        t0 = time.perf_counter()
        runs[label] = log_training(results[label], model_name="dynascore", experiment="dynascore-test", uri=uri,
                                   report_path=report, extra_artifacts={"docs": docs},
                                   params={"cli/data": "tiny", "cli/scramble": scramble},
                                   # the better run finds its out-of-time rows in TargetResult.test_features
                                   oot_features=None if label == "better" else oot, config=TrainConfig(n_boot=50),
                                   tolerance_ece=TOLERANCE_ECE)
        seconds[label] = time.perf_counter() - t0
    print("log_training seconds:", {k: round(v, 1) for k, v in seconds.items()})
    return {"uri": uri, "tmp": tmp, "runs": runs, "results": results, "oot": oot}


def test_first_version_is_champion_a_worse_one_challenger_a_better_one_takes_champion(store):
    runs = store["runs"]
    assert (runs["first"].version, runs["first"].alias) == (1, "champion")
    assert (runs["worse"].version, runs["worse"].alias) == (2, "challenger")
    assert "does not beat the champion (version 1)" in runs["worse"].decision
    assert (runs["better"].version, runs["better"].alias) == (3, "champion")
    client = MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])
    assert client.get_model_version_by_alias("dynascore", "champion").version == 3
    assert client.get_model_version_by_alias("dynascore", "challenger").version == 2
    better = client.get_run(runs["better"].run_id).data
    assert better.tags["promotion.alias"] == "champion"
    assert better.metrics["promotion/auc_diff"] > 0
    assert better.metrics["promotion/auc_diff_lo"] <= better.metrics["promotion/auc_diff"] <= \
        better.metrics["promotion/auc_diff_hi"]
    assert client.get_model_version("dynascore", "2").tags["promotion.alias"] == "challenger"


def test_run_records_config_fingerprint_metrics_and_artifacts(store):
    client = MlflowClient(tracking_uri=store["uri"])
    run = client.get_run(store["runs"]["first"].run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["data_fingerprint"] == "synthetic-7" == run.data.tags["data_fingerprint"]
    assert params["config/n_boot"] == "50" and params["config/scale/pdo"] == "40.0"
    assert params["default/lgb/learning_rate"] == "0.1" and params["default/lgb/monotone_constraints"] == "1,1,1,-1,-1"
    assert params["cli/scramble"] == "0.9" and "embargo 1 months" in params["default/slices"]
    for key in ("default/test/auc", "default/test/auc_lo", "default/train/auc", "self_cure/calib/ece",
                "default/scorecard/test/auc", "default/oracle/auc_ratio", "timing/fit_s"):
        assert np.isfinite(metrics[key]), key
    names = {a.path for folder in ("bundle", "report", "docs", "tables/calibration")
             for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"bundle/bundle.json", "bundle/default.txt", "report/report.html", "docs/features.md",
            "tables/calibration/default_test.csv", "tables/calibration/default_by_month.csv"} <= names
    assert 0 < metrics["default/test/oe_ratio"] == pytest.approx(metrics["default/test/bad_rate"]
                                                                  / metrics["default/test/mean_p"])


def test_registered_pyfunc_is_logged_from_code_and_predicts_like_the_bundle(store):
    mlflow.set_tracking_uri(store["uri"])
    mlflow.set_registry_uri(store["uri"])
    rows = store["oot"].head(200)
    model = mlflow.pyfunc.load_model("models:/dynascore@champion")
    got = model.predict(rows[FEATURES])
    want = store["results"]["better"].bundle.predict(rows[FEATURES])
    assert list(got.columns) == ["pd_default", "p_early_warning", "p_self_cure", "score"]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    local = Path(mlflow.artifacts.download_artifacts("models:/dynascore/1", dst_path=str(store["tmp"] / "dl")))
    assert not (local / "python_model.pkl").exists()
    assert not [p for p in local.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib", ".cloudpickle")]
    assert "model_code_path" in (local / "MLmodel").read_text()
    assert (local / "artifacts" / "bundle" / "bundle.json").exists()


def test_load_model_bundle_resolves_alias_version_and_directory(store, tmp_path):
    uri = store["uri"]
    champion = load_model_bundle("models:/dynascore@champion", uri)
    first = load_model_bundle("models:/dynascore/1", uri)
    rows, results = store["oot"].head(50), store["results"]
    assert np.array_equal(champion.predict(rows)["pd_default"], results["better"].bundle.predict(rows)["pd_default"])
    assert np.array_equal(first.predict(rows)["pd_default"], results["first"].bundle.predict(rows)["pd_default"])
    saved = store["results"]["first"].bundle.save(tmp_path / "bundle")
    assert load_model_bundle(str(saved)).feature_names == FEATURES
    with pytest.raises(TrackingError, match="is not in the registry"):
        load_model_bundle("models:/dynascore@nobody", uri)


def test_mlflow_models_predict_cli_scores_a_registered_version(store, tmp_path):
    rows = store["oot"].head(20)[FEATURES]
    (tmp_path / "input.json").write_text(json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))}))
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"]}
    done = subprocess.run([MLFLOW, "models", "predict", "-m", "models:/dynascore/1", "--env-manager", "local",
                           "-i", str(tmp_path / "input.json"), "-o", str(tmp_path / "out.json"),
                           "-t", "json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    got = pd.DataFrame(out["predictions"] if isinstance(out, dict) else out)
    want = store["results"]["first"].bundle.predict(rows)
    np.testing.assert_allclose(got["pd_default"], want["pd_default"], rtol=1e-9)
    np.testing.assert_array_equal(got["score"], want["score"])


def test_a_champion_on_another_feature_list_is_compared_on_the_same_rows(store, panel):
    uri, oot = store["uri"], store["oot"]
    first = log_training(_train(panel, 0.5, FEATURES[:-1]), model_name="other-catalog", experiment="dynascore-test",
                         uri=uri, oot_features=oot)
    second = log_training(_train(panel, 0.0), model_name="other-catalog", experiment="dynascore-test", uri=uri,
                          oot_features=oot)
    assert first.alias == "champion" and second.alias == "champion"
    assert second.decision.startswith("beats the champion (version 1)")
    tags = MlflowClient(tracking_uri=uri).get_run(second.run_id).data.tags
    assert tags["promotion.decision"] == second.decision


def test_a_champion_reading_a_feature_computed_differently_now_is_not_compared(store, panel):
    uri, oot = store["uri"], store["oot"]
    old = _train(panel, 0.0)
    old.bundle.fingerprints = {FEATURES[0]: "0" * 16}  # as if the catalog declared it otherwise at training
    log_training(old, model_name="moved-feature", experiment="dynascore-test", uri=uri, oot_features=oot)
    new = log_training(_train(panel, 0.0), model_name="moved-feature", experiment="dynascore-test", uri=uri,
                       oot_features=oot)
    assert new.alias == "challenger" and FEATURES[0] in new.decision and "cannot score" in new.decision


def test_better_auc_with_worse_calibration_does_not_take_champion(store):
    better = store["results"]["better"].bundle
    first = store["results"]["first"].bundle
    off = Bundle(dict(better.models), better.feature_names, better.catalog_version)
    m = better.models["default"]
    # the same ranking through a monotone map that doubles the odds: AUC unchanged, calibration broken
    shifted = Calibrator("platt", {"a": 1.0, "b": float(np.log(2.0))})
    off.models["default"] = TargetModel("default", m.text, _Chain(m.calibrator, shifted), m.best_iteration)
    fair = compare(better, first, store["oot"], tolerance_ece=TOLERANCE_ECE, n_boot=20)
    skewed = compare(off, first, store["oot"], tolerance_ece=TOLERANCE_ECE, n_boot=20)
    assert fair.promote
    assert skewed.auc_new == pytest.approx(fair.auc_new, abs=1e-3) and skewed.auc_new > skewed.auc_champion
    assert skewed.ece_new > skewed.ece_champion + TOLERANCE_ECE and not skewed.promote
    assert "beyond tolerance" in skewed.describe()


def _with(result: TrainResult, **models: TrainResult | None) -> TrainResult:
    """`result` with some targets' models taken from other runs (a run's own) or left out (None)."""
    chosen = {t: r for t, r in ({t: result for t in result.bundle.models} | models).items() if r is not None}
    bundle = dataclasses.replace(result.bundle, models={t: r.bundle.models[t] for t, r in chosen.items()})
    return dataclasses.replace(result, bundle=bundle, targets={t: r.targets[t] for t, r in chosen.items()})


def _log(store, result: TrainResult, name: str):
    """Register `result` under `name` in the store, its out-of-time rows its own."""
    return log_training(result, model_name=name, experiment="dynascore-test", uri=store["uri"],
                        tolerance_ece=TOLERANCE_ECE)


def test_a_version_with_other_targets_than_the_champion_is_challenger_and_told_which(store):
    results = store["results"]
    _log(store, results["first"], "targets")
    fewer = _log(store, _with(results["better"], early_warning=None, self_cure=None), "targets")
    assert fewer.alias == "challenger"
    assert fewer.decision == (
        "trains other targets than the champion (version 1): it lacks early_warning, self_cure, which the champion "
        "has. Train the champion's targets (train.py --targets default early_warning self_cure) to compare them, "
        "or, if the change is meant, set the champion alias on this version by hand (mlflow UI or "
        "MlflowClient.set_registered_model_alias)")
    same = _log(store, results["better"], "targets")
    assert same.alias == "champion" and same.decision.startswith("beats the champion (version 1): AUC ")
    assert "other targets not worse: early_warning AUC" in same.decision and "self_cure AUC" in same.decision
    metrics = MlflowClient(tracking_uri=store["uri"]).get_run(same.run_id).data.metrics
    assert metrics["promotion/auc_diff"] > 0 and metrics["promotion/self_cure/auc_diff"] > 0
    assert _log(store, _with(results["better"], self_cure=None), "more").alias == "champion"
    more = _log(store, results["better"], "more")
    assert more.alias == "challenger" and "it adds self_cure, which the champion lacks" in more.decision


def test_identical_models_tie_and_the_champion_stays(store):
    better = store["results"]["better"]
    _log(store, better, "tie")
    again = _log(store, better, "tie")
    auc_now = better.targets["default"].metrics["test"]["auc"]
    assert again.alias == "challenger"
    assert again.decision == (f"does not beat the champion (version 1): tie: same AUC {auc_now:.4f} on 3,000 "
                              "out-of-time default rows; the champion stays")


def test_a_better_default_model_does_not_promote_a_worse_early_warning_model(store):
    results = store["results"]
    _log(store, _with(results["better"], default=results["first"]), "mixed")
    mixed = _log(store, _with(results["better"], early_warning=results["worse"]), "mixed")
    assert mixed.alias == "challenger"
    head, worse = mixed.decision.split("; but ")
    assert head.startswith("does not beat the champion (version 1): AUC ") and "(higher by " in head
    assert worse.startswith("early_warning is worse: AUC ") and "out-of-time early_warning rows" in worse
    assert "self_cure" not in worse


def test_a_tie_or_a_tiny_difference_never_reads_as_a_zero_interval():
    tie = Comparison(3_000, 0.78181, 0.78181, 0.0, 0.0, 0.02, 0.02, 0.005)
    assert not tie.promote and not tie.worse
    assert tie.describe() == "tie: same AUC 0.7818 on 3,000 out-of-time default rows; the champion stays"
    recalibrated = dataclasses.replace(tie, ece_new=0.01)
    assert recalibrated.tie and not recalibrated.promote and "(ECE 0.0100 vs 0.0200)" in recalibrated.describe()
    tiny = Comparison(3_000, 0.78181 + 3e-7, 0.78181, 1e-7, 6e-7, 0.02, 0.02, 0.005)
    assert tiny.promote and "(higher by 0.0000003; difference 95% CI +0.0000001..+0.0000006)" in tiny.describe()
    plain = Comparison(3_000, 0.79, 0.78, 0.004, 0.016, 0.02, 0.02, 0.005)
    assert "(higher by 0.0100; difference 95% CI +0.0040..+0.0160)" in plain.describe()


class _Chain(Calibrator):
    def __init__(self, first, second):
        super().__init__("identity")
        self.first, self.second = first, second

    def transform(self, p):
        return self.second.transform(self.first.transform(p))


# --- where the store is, and what happens when it is not there ---------------------------------------------
def test_tracking_uri_prefers_the_cli_then_the_environment_then_the_local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == DEFAULT_URI == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert tracking_uri() == "http://tracking:5000"
    assert tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the probe gives up instead of hanging: the clock starts after the imports, and the bound is loose enough for a
# loaded machine (how fast it gives up is not this test's business)
def _gave_up_in_time(t0: float, timeout: float) -> None:
    seconds = time.monotonic() - t0
    assert seconds < 5 * timeout + 10, f"the probe waited {seconds:.0f} s with a {timeout:g} s timeout"


# the probe's thread is joined with the timeout and requests has the same timeout: whichever is first speaks
HONEST_TIMEOUTS = {"no answer within 1 s", "Read timed out", "Connect timed out", "Connection timed out"}


def test_an_unreachable_tracking_server_fails_with_a_clear_message(store, panel):
    uri = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(TrackingError) as caught:
        log_training(store["results"]["first"], model_name="x", experiment="x", uri=uri)
    _gave_up_in_time(t0, timeout=10.0)  # log_training probes with check_server's default timeout
    message = str(caught.value)
    assert message.startswith(f"the tracking server at {uri} does not answer (")
    assert message.endswith("start it or use --tracking-uri sqlite:///mlflow.db") and "\n" not in message


def test_a_server_that_accepts_and_never_answers_is_given_up_on_after_the_timeout():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(TrackingError) as caught:
            check_server(uri, timeout=1.0)
        _gave_up_in_time(t0, timeout=1.0)
    prefix = f"the tracking server at {uri} does not answer ("
    suffix = "); start it or use --tracking-uri sqlite:///mlflow.db"
    message = str(caught.value)
    assert message.startswith(prefix) and message.endswith(suffix), message
    assert message[len(prefix):-len(suffix)] in HONEST_TIMEOUTS, message


def test_a_file_store_uri_is_refused_with_what_to_use_instead(store, tmp_path):
    with pytest.raises(TrackingError, match="file store"):
        log_training(store["results"]["first"], model_name="x", experiment="x", uri=str(tmp_path / "mlruns"))


def test_a_real_mlflow_server_records_and_serves_the_run(tmp_path, panel):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
                               "--default-artifact-root", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"],
                              env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a bound on how fast the server starts
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer /health in 10 minutes"
            time.sleep(0.5)
        result = _train(panel, 0.0)
        run = log_training(result, model_name="served", experiment="server-test", uri=uri,
                           oot_features=_oot(panel))
        assert (run.version, run.alias) == (1, "champion")
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert client.get_run(run.run_id).data.metrics["default/test/auc"] > 0.6
        rows = _oot(panel).head(30)
        bundle = load_model_bundle("models:/served@champion", uri)
        assert np.array_equal(bundle.predict(rows)["score"], result.bundle.predict(rows)["score"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()
