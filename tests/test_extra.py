"""Columns from outside the histories (--extra): read and refused as the contract is, joined point in time, trained
on, required at scoring, and scored the same by the nightly job and the pyfunc model."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.builders import build_features
from features.catalog import default_catalog
from features.contract import ContractError, load_tables
from features.extra import FOUND, NOT_IN_FILE, NOT_YET, ExtraColumns, check_accounts, read_extra, taken_names
from models.bundle import load_bundle
from models.latent_state import taken_by_latent
from scoring.job import ScoreError, ScoreRequest, run
from scoring.output import manifest_path, sha256
from simulation.generate import Request, generate
from training.config import TrainConfig
from training.trainer import build_training_panel, train

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2025-06-30"
FOREIGN = 5  # accounts of the extra file the data does not hold
TAKEN = taken_names(default_catalog(), taken_by_latent())


# ------------------------------------------------------------------------------------ the as-of join


def _brute(rows: list[tuple[int, int | None, float]], account: int, day: int) -> tuple[float, int]:
    """The plain reading of the rule: the account's row with the latest day on or before `day`."""
    own = [r for r in rows if r[0] == account]
    if not own:
        return np.nan, NOT_IN_FILE
    known = [r for r in own if r[1] is None or r[1] <= day]
    if not known:
        return np.nan, NOT_YET
    return max(known, key=lambda r: -1 if r[1] is None else r[1])[2], FOUND


def _columns(rows: list[tuple[int, int | None, float]], dated: bool) -> ExtraColumns:
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1] or 0))
    return ExtraColumns(("x",), np.array([rows[i][0] for i in order], np.int64),
                        np.array([rows[i][1] for i in order], np.int64) if dated else None,
                        np.array([[rows[i][2]] for i in order], np.float64).reshape(-1, 1))


keyed = st.lists(st.tuples(st.integers(0, 6), st.integers(-40, 40), st.floats(-1e6, 1e6)), max_size=30,
                 unique_by=lambda r: (r[0], r[1]))
asked = st.lists(st.tuples(st.integers(-1, 8), st.integers(-60, 60)), min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(keyed, asked, st.booleans())
def test_the_join_takes_the_latest_value_dated_on_or_before_each_day_and_never_a_later_one(rows, wanted, dated):
    if not dated:  # one row per account, known throughout
        rows = list({r[0]: (r[0], None, r[2]) for r in rows}.values())
    extra = _columns(rows, dated)
    account, day = np.array([w[0] for w in wanted]), np.array([w[1] for w in wanted])
    values, status = extra.at(account, day)
    expected = [_brute(rows, a, d) for a, d in wanted]
    np.testing.assert_array_equal(status, [e[1] for e in expected])
    np.testing.assert_array_equal(values[:, 0], [e[0] for e in expected])
    # a chunk's slice answers its accounts as the whole file does
    lo, hi = 2, 5
    inside = (account >= lo) & (account < hi)
    part_values, part_status = extra.between(lo, hi).at(account[inside], day[inside])
    np.testing.assert_array_equal(part_status, status[inside])
    np.testing.assert_array_equal(part_values, values[inside])


# ---------------------------------------------------------------------------------------- the file's rules


def _refused(tmp_path: Path, frame: pd.DataFrame, name: str = "extra.csv") -> str:
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    with pytest.raises(ContractError) as caught:
        read_extra(path, TAKEN)
    return str(caught.value)


def test_a_file_in_the_rules_reads_with_booleans_as_numbers_and_rows_in_key_order(tmp_path):
    path = tmp_path / "bureau.parquet"
    pd.DataFrame({"account_id": [3, 1, 2], "bureau_score": [600, None, 700], "owner": [True, False, True]}
                 ).to_parquet(path)
    extra = read_extra(path, TAKEN)
    assert extra.names == ("bureau_score", "owner") and not extra.dated
    np.testing.assert_array_equal(extra.account_id, [1, 2, 3])
    np.testing.assert_array_equal(extra.values, [[np.nan, 0], [700, 1], [600, 1]])
    assert extra.describe()["file"] == "bureau.parquet" and extra.describe()["accounts"] == 3


def test_text_is_refused_naming_the_column_the_rows_and_how_to_encode(tmp_path):
    frame = pd.DataFrame({"account_id": range(1, 7), "segment": ["1", "A", "2", "B", "C", None]})
    message = _refused(tmp_path, frame)
    assert message.startswith(f"extra.segment is text in 3 of 6 rows (row 2, 4, 5) in {tmp_path / 'extra.csv'}")
    assert "encode a category as numbers" in message


def test_repeated_keys_are_refused_naming_the_accounts(tmp_path):
    static = pd.DataFrame({"account_id": [5, 7, 9, 7], "score": [1.0, 2, 3, 4]})
    message = _refused(tmp_path, static)
    assert message.startswith("extra.account_id is duplicated in 2 of 4 rows (account_id 7)"), message
    assert "add an as_of column" in message
    dated = static.assign(as_of=["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29"])
    dated.loc[3, "account_id"] = 5
    dated.loc[0, "as_of"] = dated.loc[3, "as_of"] = "2024-02-29"
    message = _refused(tmp_path, dated)
    assert message.startswith("extra.(account_id, as_of) is duplicated in 2 of 4 rows (account_id 5)"), message


@pytest.mark.parametrize(("name", "holder"), [("dpd_now", "a feature of the catalog"),
                                              ("default", "a target's label column"),
                                              ("latent_state0", "a latent-state feature")])
def test_a_name_already_taken_is_refused_with_what_holds_it(tmp_path, name, holder):
    message = _refused(tmp_path, pd.DataFrame({"account_id": [1, 2], name: [1.0, 2.0]}))
    assert message.startswith(f"extra.{name} is the name of {holder}"), message
    assert f"ext_{name}" in message


def test_a_file_of_none_of_the_data_s_accounts_is_refused_and_strangers_are_counted(tmp_path):
    path = tmp_path / "extra.csv"
    pd.DataFrame({"account_id": [3, 5, 8], "score": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    extra = read_extra(path, TAKEN)
    assert check_accounts(extra, np.array([1, 2, 3, 5, 9])) == 1
    with pytest.raises(ContractError, match=r"^extra.account_id names none of the data's accounts \(3 accounts\)"):
        check_accounts(extra, np.array([10, 11]))


def test_keys_that_break_the_rules_are_refused_all_at_once(tmp_path):
    message = _refused(tmp_path, pd.DataFrame({"customer": [1], "score": [1.0]}))
    assert message.startswith("extra.account_id is missing (columns present: customer, score)"), message
    frame = pd.DataFrame({"account_id": [1, 2.5, 3], "as_of": ["2024-01-31", "someday", "2024-03-31"],
                          "score": [1.0, 2.0, np.inf]})
    message = _refused(tmp_path, frame, "extra.parquet")
    assert "extra.account_id is not an integer id in 1 of 3 rows" in message
    assert "extra.as_of is not a calendar date" in message
    assert "extra.score is infinite in 1 of 3 rows (row 3)" in message


# --------------------------------------------------------------------------------- training and scoring


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small world, and a dated extra file from its truth: a noisy copy of each month's true default risk
    (signal) and pure noise, for nine accounts in ten (the tenth is missing from the file)."""
    folder = tmp_path_factory.mktemp("worlds") / "extra"
    generate(folder, Request(2_500, 30, seed=7), progress=False)
    tables = load_tables(folder, optional=("macro", "truth"))
    truth = tables.truth
    rng = np.random.default_rng(0)
    extra = truth[["account_id", "as_of"]].assign(
        bureau_risk=np.log(truth["p_default_true"].fillna(0.01).clip(1e-4)).to_numpy() + rng.normal(0, 0.3, len(truth)),
        noise=rng.normal(size=len(truth)))
    extra = extra[extra["account_id"] % 10 != 0]
    foreign = extra.head(FOREIGN).assign(account_id=10**12 + np.arange(FOREIGN))  # another portfolio's accounts
    path = folder.parent / "bureau.csv"
    extra = pd.concat([extra, foreign])
    extra.to_csv(path, index=False)
    return folder, tables, path


@pytest.fixture(scope="module")
def trained_with_extra(world, tmp_path_factory):
    _, tables, path = world
    result = train(tables, TrainConfig(targets=("default",), n_boot=10), extra=read_extra(path, TAKEN),
                   progress=lambda _: None)
    return result, result.bundle.save(tmp_path_factory.mktemp("bundle") / "extra")


def test_the_extra_columns_are_trained_on_recorded_and_given_drift_references(world, trained_with_extra):
    result, folder = trained_with_extra
    bundle = load_bundle(folder, default_catalog())
    assert bundle.feature_names[-2:] == ["bureau_risk", "noise"]
    assert bundle.extra["columns"] == ["bureau_risk", "noise"] and bundle.extra["dated"]
    assert bundle.extra["file"] == "bureau.csv" and len(bundle.extra["fingerprint"]) == 16
    assert "bureau_risk" not in bundle.fingerprints and "bureau_risk" not in bundle.catalog_feature_names
    assert {"bureau_risk", "noise"} <= set(bundle.reference["features"])
    booster = bundle.models["default"].booster
    gain = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))
    assert max(gain, key=gain.get) == "bureau_risk", sorted(gain.items(), key=lambda kv: -kv[1])[:3]
    counts = result.panel_counts.set_index("target")["usable"]
    missing = counts[counts.index.str.startswith("(extra columns: account not in bureau.csv")]
    ids = result.panel.frame["account_id"].to_numpy()
    in_file = np.isin(ids, pd.read_csv(world[2])["account_id"].unique())
    assert missing.iloc[0] == (~in_file).sum() >= (ids % 10 == 0).sum() > 0  # the accounts left out, counted
    assert np.isnan(result.panel.frame["bureau_risk"].to_numpy()[~in_file]).all()


def test_supplied_labels_get_the_extra_columns_of_their_own_day(world):
    _, tables, path = world
    extra = read_extra(path, TAKEN)
    file = _read(path)
    asked = file[file["as_of"] < pd.Timestamp("2025-06-01")].iloc[::997][["account_id", "as_of"]]
    asked = asked.assign(as_of=asked["as_of"] + pd.Timedelta(days=12), default=0.0)  # between two monthly values
    panel = build_training_panel(tables, TrainConfig(), default_catalog(), asked, extra)
    got = panel.frame.set_index(["account_id", "as_of"])["bureau_risk"]
    want = pd.merge_asof(panel.frame[["as_of", "account_id"]].sort_values("as_of"), file.sort_values("as_of"),
                         on="as_of", by="account_id").set_index(["account_id", "as_of"])["bureau_risk"]
    assert len(got) > 50
    np.testing.assert_allclose(got.sort_index(), want.sort_index())


def _with_extra(tables, path: Path) -> pd.DataFrame:
    """The features as of AS_OF, with the file's values joined by pandas (merge_asof), not by features.extra."""
    feats = build_features(tables, [AS_OF], default_catalog())
    feats["as_of"] = feats["as_of"].astype("datetime64[s]")
    return pd.merge_asof(feats.sort_values("as_of"), _read(path).sort_values("as_of"), on="as_of",
                         by="account_id").set_index("account_id")


def _read(path: Path) -> pd.DataFrame:
    file = pd.read_csv(path, parse_dates=["as_of"])
    return file.assign(as_of=file["as_of"].astype("datetime64[s]"))


def test_the_job_scores_as_the_pyfunc_model_does_with_the_columns_passed(world, trained_with_extra, tmp_path):
    import mlflow

    from training.tracking import MODEL_CODE, _signature

    folder, tables, path = world
    bundle_dir = trained_with_extra[1]
    out = tmp_path / "s.parquet"
    manifest = run(ScoreRequest(folder, out, model=str(bundle_dir), as_of=AS_OF, workers=1, chunk_size=700,
                                extra=path))
    scored = pd.read_parquet(out).set_index("account_id")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    bundle = load_bundle(bundle_dir)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE),
                                       artifacts={"bundle": str(bundle_dir)}, code_paths=[str(MODEL_CODE.parent)],
                                       signature=_signature(bundle))
    model = mlflow.pyfunc.load_model(info.model_uri)
    assert {"bureau_risk", "noise"} <= set(model.metadata.get_input_schema().input_names())
    frame = _with_extra(tables, path).loc[scored.index]
    on_book = scored["pd_default"].notna().to_numpy()
    expected = model.predict(frame[bundle.feature_names].astype(np.float64))["pd_default"].to_numpy()
    np.testing.assert_allclose(scored["pd_default"].to_numpy()[on_book], expected[on_book], atol=1e-12)
    assert on_book.sum() > 500
    lacking = manifest["input"]["extra"]["rows_missing"]
    assert lacking["not_in_file"] == frame["bureau_risk"].isna().sum() > 0 and lacking["not_known_yet"] == 0
    assert manifest["input"]["extra"]["columns"] == ["bureau_risk", "noise"]
    assert manifest["input"]["extra"]["accounts_not_in_data"] == FOREIGN
    assert {"bureau_risk", "noise"} <= set(manifest["drift"]["features"])  # judged like any feature
    with pytest.raises(Exception, match="noise"):  # the pyfunc model refuses a frame without an extra column
        model.predict(frame[bundle.feature_names].drop(columns="noise").astype(np.float64))


def _score_py(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "score.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_scoring_without_the_columns_the_model_reads_is_refused_and_writes_nothing(world, trained_with_extra,
                                                                                   tmp_path):
    folder, _, path = world
    bundle_dir = trained_with_extra[1]
    out = tmp_path / "s.parquet"
    out.write_bytes(b"last night's output")
    before = sha256(out)
    base = ["--model", str(bundle_dir), "--data", str(folder), "--out", str(out), "--workers", "1",
            "--overwrite"]
    res = _score_py(base, tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr == (f"error: {bundle_dir} reads extra columns bureau_risk, noise (from bureau.csv at training): "
                          "pass tonight's file with --extra FILE (account_id, as_of, bureau_risk, noise)\n")
    assert sha256(out) == before and not manifest_path(out).exists()
    lacking = tmp_path / "tonight.csv"
    pd.read_csv(path).drop(columns="noise").to_csv(lacking, index=False)
    with pytest.raises(ScoreError, match=f"^{lacking} lacks the extra column\\(s\\) noise that {bundle_dir} reads: "
                                         "pass a file with account_id, as_of, bureau_risk, noise$"):
        run(ScoreRequest(folder, out, model=str(bundle_dir), workers=1, extra=lacking, overwrite=True))
    assert sha256(out) == before


def test_a_model_without_extra_columns_refuses_a_file_it_would_ignore(world, trained_with_extra, tmp_path):
    folder, _, path = world
    plain = load_bundle(trained_with_extra[1])
    meta = json.loads((trained_with_extra[1] / "bundle.json").read_text())
    assert meta["schema_version"] == 3 and meta["extra"]["columns"] == ["bureau_risk", "noise"]
    without = dataclasses.replace(plain, extra=None).save(tmp_path / "plain")  # the check comes before the trees
    with pytest.raises(ScoreError, match=r"reads no extra columns .* would be ignored; drop --extra"):
        run(ScoreRequest(folder, tmp_path / "s.parquet", model=str(without), workers=1, extra=path))
    assert not (tmp_path / "s.parquet").exists()


def test_train_py_refuses_a_file_against_the_rules_before_training(world, tmp_path):
    folder, _, _ = world
    bad = tmp_path / "bureau.csv"
    pd.DataFrame({"account_id": [1, 2], "dpd_now": [3, 4]}).to_csv(bad, index=False)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(folder), "--extra", str(bad)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 1, res.stderr[-2000:]
    assert res.stderr.startswith(f"error: extra.dpd_now is the name of a feature of the catalog in {bad}")
    assert not (tmp_path / "reports").exists()
