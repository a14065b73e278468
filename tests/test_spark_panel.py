"""The training panel built on Spark is the local panel, row for row, and train.py --panel trains on it.

A small world of its own (a few thousand accounts over two years): Spark's overhead per task dwarfs the
rows, and a few customer groups are enough to show that no group's own dates leak into its rows.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import default_catalog
from features.contract import load_tables
from features.targets import TARGET_NAMES
from training.config import TrainConfig
from training.spark_panel import INFO, PanelFolderError, build_panel_spark, check_panel, read_panel
from training.trainer import build_training_panel, train

ROOT = Path(__file__).resolve().parents[1]
QUICK = TrainConfig(targets=("early_warning",), num_boost_round=15, n_boot=5)
KEYS = ["account_id", "as_of"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from simulation.generate import Request, generate

    out = tmp_path_factory.mktemp("spark-panel") / "world"
    generate(out, Request(1_500, 24, seed=11), progress=False)
    return out


@pytest.fixture(scope="module")
def built(spark, world):
    """The Spark panel (two customer groups) and the local one, with the same config."""
    folder = world.parent / "panel"
    info = build_panel_spark(spark, world, QUICK, default_catalog(), folder, buckets=2)
    local = build_training_panel(load_tables(world, optional=("macro",)), QUICK, default_catalog())
    return folder, info, local


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEYS, kind="stable").reset_index(drop=True)


def test_the_spark_panel_is_the_local_panel_value_for_value(built):
    folder, info, local = built
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".")) == []  # no temp folder left
    assert json.loads((folder / INFO).read_text()) == info
    read = read_panel(folder, QUICK)
    assert read.feature_names == local.feature_names == info["features"]
    assert info["rows"] == len(local.frame) > 10_000
    pd.testing.assert_frame_equal(_sorted(read.frame), _sorted(local.frame), check_exact=True)  # NaN equal
    pd.testing.assert_frame_equal(read.counts, local.counts, check_exact=True)
    # read back in the local panel's order (as-of day, then account): the same rows give the same model
    pd.testing.assert_frame_equal(read.frame, local.frame, check_exact=True)
    from_folder = train(None, QUICK, panel=read, progress=lambda _: None, data_fingerprint=info["data_fingerprint"])
    from_tables = train(load_tables(folder.parent / "world", optional=("macro",)), QUICK, panel=local,
                        progress=lambda _: None)
    assert from_folder.bundle.models["early_warning"].text == \
        from_tables.bundle.models["early_warning"].text
    assert from_folder.fingerprint == info["data_fingerprint"]


def test_a_share_of_customers_keeps_each_kept_customer_whole(built):
    folder = built[0]
    whole = read_panel(folder, QUICK)
    half = read_panel(folder, QUICK, customers=0.5)
    customers = pd.read_parquet(folder, columns=["account_id", "customer_id"]).drop_duplicates()
    kept = set(customers.loc[customers["account_id"].isin(half.frame["account_id"]), "customer_id"])
    assert 0.4 < len(kept) / customers["customer_id"].nunique() < 0.6
    accounts = customers.loc[customers["customer_id"].isin(kept), "account_id"]
    expected = whole.frame[whole.frame["account_id"].isin(accounts)].reset_index(drop=True)
    pd.testing.assert_frame_equal(half.frame, expected, check_exact=True)  # every row of a kept customer's accounts
    left_out = half.counts["target"].str.startswith("(customers outside the 0.5 sample")
    assert int(half.counts.loc[left_out, "usable"].sum()) == len(whole.frame) - len(half.frame)
    # the same customers on every read, and a larger share keeps them
    assert half.frame.equals(read_panel(folder, QUICK, customers=0.5).frame)
    assert set(half.frame["account_id"]) <= set(read_panel(folder, QUICK, customers=0.7).frame["account_id"])


def test_a_panel_for_another_catalog_or_config_is_refused(built):
    folder, info, _ = built
    catalog = default_catalog()
    check_panel(info, QUICK, catalog, folder)
    with pytest.raises(PanelFolderError, match="feature catalog old"):
        check_panel({**info, "catalog_version": "old"}, QUICK, catalog, folder)
    with pytest.raises(PanelFolderError, match="label config"):
        check_panel(info, replace(QUICK, labels=replace(QUICK.labels, default_dpd=60)), catalog, folder)
    with pytest.raises(PanelFolderError, match="seed"):
        check_panel(info, replace(QUICK, seed=QUICK.seed + 1), catalog, folder)
    with pytest.raises(PanelFolderError, match="latent_state = true needs the accounts' histories"):
        read_panel(folder, replace(QUICK, latent_state=True))
    with pytest.raises(PanelFolderError, match="not a panel folder"):
        read_panel(folder.parent / "world", QUICK)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train_py(args, cwd, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_train_py_trains_and_registers_from_a_panel_folder(built, tmp_path):
    folder, info, _ = built
    config = tmp_path / "quick.toml"
    config.write_text('[train]\ntargets = ["early_warning"]\nnum_boost_round = 15\nn_boot = 5\n')
    res = _train_py(["--panel", str(folder), "--panel-customers", "0.5", "--config", str(config)], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "customers sampled 0.5" in out and "  early_warning: fitted (" in out
    assert "registered models:/dynascore/1 version 1" in out
    assert f"--data {info['data']}" in out.split("\nscore with: ", 1)[1].splitlines()[0]
    assert not (tmp_path / "reports").exists()  # no pack: the folder holds no histories


def test_train_py_refuses_what_a_panel_folder_cannot_give(built, tmp_path, capsys):
    folder = built[0]
    train_py = _script("train")
    latent = tmp_path / "latent.toml"
    latent.write_text('[train]\ntargets = ["early_warning"]\nlatent_state = true\n')
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert train_py.main(["--panel", str(folder), "--config", str(latent), "--tracking-uri", uri]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "latent_state = true needs the accounts' histories" in err
    for wrong in (["--panel-customers", "0.5"], ["--panel", str(folder), "--panel-customers", "1.5"],
                  ["--panel", str(folder), "--labels", str(latent)]):
        with pytest.raises(SystemExit) as stop:
            train_py.main(wrong)
        assert stop.value.code == 2


def test_every_target_is_a_column_of_the_folder(built):
    folder, _, _ = built
    columns = pd.read_parquet(folder).columns
    assert {"account_id", "customer_id", "as_of", *TARGET_NAMES} <= set(columns)
    assert pd.read_parquet(folder, columns=["as_of"])["as_of"].dtype.kind in "OM"
    assert np.isnan(pd.read_parquet(folder, columns=["self_cure"])["self_cure"]).any()


def test_python_m_training_panel_builds_the_same_folder_and_says_how_to_train(built, tmp_path):
    import pyarrow.parquet as pq

    folder, info, _ = built
    out = tmp_path / "panel"
    command = [sys.executable, "-m", "training", "panel", str(folder.parent / "world"), "--out", str(out),
               "--buckets", "2", "--spark-master", "local[2]"]
    res = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{info['rows']:,} rows" in res.stdout and f"python train.py --panel {out}" in res.stdout
    assert "Traceback" not in res.stderr and "FutureWarning" not in res.stderr

    def table(path):
        return pq.read_table(path).to_pandas().sort_values(KEYS, kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(table(out), table(folder), check_exact=True)
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1 and "--overwrite" in again.stderr  # an existing panel is kept
