"""Training from one snapshot: cross-validation over accounts where slices in time cannot be cut, and the monthly
path end to end as README gives it (view -> adapt -> train -> score)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.builders import Prepared
from features.panel import Panel
from models.registry import CHALLENGER
from review.evidence import ON_BOOK
from simulation.monthly_view import latest_snapshot, snapshot_labels
from training.config import TrainConfig
from training.promotion import promote
from training.slices import TooFewMonthsError
from training.snapshot import SnapshotPlan, account_folds
from training.trainer import train, uninformative
from validation.metrics import auc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def snapshot_labels_frame(baseline_tables):
    """The default after the world's latest complete snapshot, in the supplied-labels form train() reads."""
    prep = Prepared(baseline_tables)
    labels = snapshot_labels(prep, latest_snapshot(prep))
    return labels.rename(columns={"label": "default"})[["account_id", "as_of", "default"]]


def test_cross_validation_folds_are_account_disjoint_and_score_every_row_once():
    """Fit k tests fold k, stops and calibrates on the two halves of fold k + 1 and trains on the rest; every row
    is tested by exactly one fit; an account's rows (several as-of dates) are always on one side."""
    rng = np.random.default_rng(0)
    account = rng.choice(rng.integers(0, 2**40, 3_000), 9_000)  # about 3 rows per account
    plan = SnapshotPlan(pd.Timestamp("2025-06-30"), pd.Timestamp("2025-06-30"), folds=5, why="a test")
    rows = np.arange(len(account)) + 100
    tested = np.zeros(len(account), int)
    fold = account_folds(account, 5)
    for k in range(5):
        at = plan.fit_rows(k, rows, account)
        sides = {s: set(account[r - 100]) for s, r in at.items()}
        for a in sides:
            for b in sides:
                assert a == b or not sides[a] & sides[b], (k, a, b)
        assert set(fold[at["test"] - 100]) == {k}
        assert set(fold[np.r_[at["valid"], at["calib"]] - 100]) == {(k + 1) % 5}
        assert not {k, (k + 1) % 5} & set(fold[at["train"] - 100])
        assert sum(len(r) for r in at.values()) == len(rows)
        tested[at["test"] - 100] += 1
    assert (tested == 1).all()
    assert 0.17 < np.mean(fold == 0) < 0.23
    kept = plan.assign(pd.Series(np.zeros(len(account))), account)  # the kept model: the last fold stops
    assert set(kept[fold == 4]) == {"valid", "calib"} and set(kept[fold != 4]) == {"train"}


def test_too_few_months_train_over_accounts_and_say_why(baseline_tables, snapshot_labels_frame):
    """One snapshot of labels: the default split chooses cross-validation, says why, scores every labelled row
    out of fold; the figures are the out-of-fold ones, and the kept model's own slices are the last fold."""
    cfg = TrainConfig(targets=("default",), n_boot=20)
    said = []
    result = train(baseline_tables, cfg, labels=snapshot_labels_frame, progress=said.append)
    r = result.targets["default"]
    assert isinstance(r.plan, SnapshotPlan) and r.plan.held_out == "out-of-fold"
    assert "1 as-of month with complete labels, but the slices in time need 21" in r.plan.describe()
    assert any("5 fits out of fold" in line for line in said)
    usable = len(snapshot_labels_frame)
    assert len(r.predictions) == r.rows["test"] == pd.Series(result.panel.frame["default"]).notna().sum() <= usable
    assert r.rows["valid"] + r.rows["calib"] + r.rows["train"] == r.rows["test"]
    assert r.metrics["test"]["auc"] == pytest.approx(auc(r.predictions["y"], r.predictions["p"]))
    assert r.metrics["test"]["auc_lo"] < r.metrics["test"]["auc"] < r.metrics["test"]["auc_hi"]
    assert 0.6 < r.metrics["test"]["auc"] < r.metrics["train"]["auc"]  # unseen accounts rank worse than seen
    assert result.bundle.info["label_source"] == "file"


def test_a_time_split_that_cannot_be_cut_is_refused_with_the_way_out(baseline_tables, snapshot_labels_frame):
    cfg = TrainConfig(targets=("default",), split="time")
    with pytest.raises(TooFewMonthsError, match=r'slices in time need 21 .*split = "accounts"'):
        train(baseline_tables, cfg, labels=snapshot_labels_frame, progress=lambda _: None)
    for bad in ({"split": "random"}, {"folds": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)


def test_features_that_cannot_split_the_training_rows_are_named():
    n = 1_000
    values = np.vstack([np.arange(n, dtype=float), np.full(n, np.nan), np.zeros(n), np.where(np.arange(n) % 2, 0.0,
                        np.nan), np.r_[np.zeros(n - 1), 1.0]])
    panel = Panel.over(values, ["moves", "empty", "zero", "zero_or_missing", "one_late_change"], np.arange(n),
                       np.full(n, np.datetime64("2025-06-30", "s")), {"default": np.zeros(n)}, pd.DataFrame())
    rows = np.arange(n)
    assert uninformative(panel, rows) == {"empty": "empty", "zero": "always 0"}
    assert uninformative(panel, rows[:-1]) == {"empty": "empty", "zero": "always 0", "one_late_change": "always 0"}
    kept = panel.without(["empty", "zero"])
    assert kept.feature_names == ["moves", "zero_or_missing", "one_late_change"]
    np.testing.assert_array_equal(kept.frame["one_late_change"], values[4])


def test_a_cross_validated_model_is_never_promoted_over_a_champion_by_itself():
    """Its out-of-fold rows were in the kept model's training: no fair comparison, so challenger, saying why."""
    client = SimpleNamespace(get_model_version_by_alias=lambda name, alias: SimpleNamespace(version="3"))
    verdict = promote(client, "sqlite://", "dynascore", None, {}, tolerance_ece=0.005, config=None, tmp=Path("."),
                      cross_validated=("default",))
    assert verdict.alias == CHALLENGER
    assert "default cross-validated over accounts" in verdict.decision and "(version 3)" in verdict.decision


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def test_the_monthly_path_runs_end_to_end_as_readme_gives_it(baseline_dir, tmp_path):
    """A bureau-style monthly view of a world, adapted, trained on from one snapshot and scored."""
    view, adapted = tmp_path / "view", tmp_path / "adapted"
    steps = [["-m", "simulation", "monthly", str(baseline_dir[0]), "--months", "6", "--out", str(view)],
             ["-m", "features", "adapt", "monthly", str(view / "monthly.parquet"), "--out", str(adapted)],
             [str(ROOT / "train.py"), "--data", str(adapted), "--labels", str(view / "labels.parquet"),
              "--targets", "default"]]
    for args in steps:
        res = _run(args, tmp_path)
        assert res.returncode == 0, (args, res.stderr[-2000:])
    out = res.stdout
    assert "cross-validation over accounts" in out and "out-of-fold AUC" in out
    assert "features left out" in out and "lag1_n1" in out  # day-exact features are empty on monthly data
    res = _run([str(ROOT / "score.py"), "--data", str(adapted), "--model", "models:/dynascore/1"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    scores = pd.read_parquet(next((tmp_path / "scores").glob("scores-*.parquet")))
    on_book = scores[scores["status"].isin(ON_BOOK)]
    assert len(on_book) > 1_000 and on_book["pd_default"].between(0, 1).all()
