"""train.py from the outside: it trains and registers, tunes into nested runs, and refuses bad input early."""
from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from models.lgbm import dataset, lgb_params
from training.config import TrainConfig
from training.job import run_training
from training.tuning import tune

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """train.py or score.py, loaded from the project's root as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train_py(args, cwd, timeout=600):
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: earlier tests in this process must not leak theirs
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_train_py_trains_registers_and_says_where_to_look(baseline_dir, tmp_path):
    res = _train_py(["--data", str(baseline_dir[0]), "--targets", "default"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "registered models:/dynascore/1 version 1 as champion" in out
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in out
    assert (tmp_path / "mlflow.db").exists()
    # mlflow's own chatter is kept for --verbose: its INFO lines, download bars and registration notes
    for chatter in ("INFO mlflow", "Creating initial MLflow database tables", "Downloading artifacts",
                    "Successfully registered model", "Created version"):
        assert chatter not in res.stderr + out, chatter
    # the panel and the fit say when they start and end
    assert "panel: building" in out and "  default: fitted (" in out
    # where the model is, and a score command that score.py parses, with the data it was trained on
    bundle = out.split("\nbundle: ", 1)[1].split(" ", 1)[0]
    assert (tmp_path / bundle / "bundle.json").exists()
    command = shlex.split(out.split("\nscore with: ", 1)[1].splitlines()[0])
    assert command[:2] == ["python", "score.py"]
    score_py = _script("score")
    args = score_py.parser().parse_args(command[2:])
    assert (args.model, args.data) == ("models:/dynascore/1", baseline_dir[0])
    reports = list((tmp_path / "reports").glob("validation-*.html"))
    assert len(reports) == 1 and reports[0].with_suffix(".json").exists()  # the validation pack, page and numbers
    page = reports[0].read_text()
    assert all(f'id="{key}"' in page for key in ("summary", "discrimination", "calibration", "benchmark"))
    segments = page.split("default: by segment", 1)[1].split("</table>", 1)[0]
    assert "<td>installment</td>" in segments and "<td>revolving</td>" in segments  # the product split


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--targets", "profit"], 2, "error: argument --targets: invalid choice: 'profit'"),
    (["--data", "no/such/dir"], 2, "error: argument --data: data directory no/such/dir does not exist"),
    (["--as-of-start", "2025-06-30", "--as-of-end", "2025-01-31"], 2,
     "error: argument --as-of-start: 2025-06-30 is after --as-of-end 2025-01-31"),
    (["--as-of-end", "2031-01-31"], 1, "error: as-of end 2031-01-31 is after the data's extraction date"),
])
def test_bad_requests_fail_clearly_and_register_nothing(baseline_dir, tmp_path, args, code, message):
    data = [] if "--data" in args else ["--data", str(baseline_dir[0])]
    res = _train_py([*data, *args], tmp_path)
    assert res.returncode == code, res.stderr
    assert res.stderr.startswith(message), res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_a_config_with_an_unknown_key_is_refused(baseline_dir, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text("[train]\nlearning_rate = 0.1\n")
    res = _train_py(["--data", str(baseline_dir[0]), "--config", str(cfg)], tmp_path)
    assert res.returncode == 2 and "[train] has unknown key(s) learning_rate" in res.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_one_class_only_is_a_clear_error(baseline_dir, tmp_path):
    from features.contract import load_tables

    truth = load_tables(baseline_dir[0], optional=("truth",)).truth
    rows = truth[truth["as_of"] >= "2023-06-30"][["account_id", "as_of"]].drop_duplicates()
    rows.assign(target="default", label=0).to_csv(tmp_path / "labels.csv", index=False)
    res = _train_py(["--data", str(baseline_dir[0]), "--labels", str(tmp_path / "labels.csv"),
                     "--targets", "default"], tmp_path)
    assert res.returncode == 1 and "has only one class" in res.stderr, res.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_a_tracking_server_that_does_not_answer_stops_train_py_before_training(baseline_dir, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)  # accepts connections, never answers
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        res = _train_py(["--data", str(baseline_dir[0]), "--tracking-uri", uri], tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    # the probe gave up on its own timeout (its thread's join or requests' read timeout, whichever came first)
    assert res.stderr.startswith(f"error: the tracking server at {uri} does not answer ("), res.stderr[-2000:]
    reason = res.stderr.split(" does not answer (", 1)[1].split(")", 1)[0]
    assert reason in {"no answer within 10 s", "Read timed out", "Connect timed out", "Connection timed out"}, reason
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "reports").exists()


def test_tuning_is_deterministic_chosen_on_validation_and_logged_as_nested_runs(baseline_dir, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(4000, 3)), columns=["a", "b", "c"])
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(X["a"] - 2)))).astype(float).to_numpy()
    seen = []
    params = lgb_params([1, 0, 0], 5)
    train = dataset(X[:3000], y[:3000], params=params)
    valid = dataset(X[3000:], y[3000:], reference=train, params=params)
    runs = [tune(train, valid, [1, 0, 0], 5, n_trials=3, on_trial=lambda *t: seen.append(t)) for _ in range(2)]
    assert runs[0] == runs[1] and len(seen) == 6
    assert [t[2] for t in seen[:3]] == [t[2] for t in seen[3:]]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = TrainConfig(targets=("default",), tune_trials=2, n_boot=20, num_boost_round=40)  # the runs count, not the fit
    run = run_training(baseline_dir[0], cfg, uri=uri, experiment="tuning", model_name="tuned",
                       reports_dir=tmp_path / "reports", progress=lambda _: None)
    mlflow.set_tracking_uri(uri)
    children = mlflow.search_runs(experiment_names=["tuning"],
                                  filter_string=f"tags.mlflow.parentRunId = '{run.logged.run_id}'")
    assert len(children) == 2
    assert children["metrics.valid_log_loss"].notna().all()
