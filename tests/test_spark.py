"""The nightly job on Spark gives the local engine's rows and counts, refuses bad input as the local engine does,
and runs from score.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoring.job import ScoreError, ScoreRequest, run
from simulation.generate import Request, generate

ROOT = Path(__file__).resolve().parents[1]
SAME = ("rows", "distributions", "limits", "guardrails", "reasons", "drift", "previous")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "spark"
    generate(out, Request(3_000, 30, seed=11), progress=False)
    return out


@pytest.fixture(scope="module")
def bundle_dir(trained, tmp_path_factory):
    # with the latent-state filter: the groups compute its features from their customers' histories too
    return trained.bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")


def _sorted(path: Path) -> pd.DataFrame:
    return pq.read_table(path).sort_by("account_id").to_pandas()


def test_spark_gives_the_local_engines_rows_value_for_value_and_the_same_counts(spark, world, bundle_dir, tmp_path,
                                                                                monkeypatch):
    from pyspark.sql import DataFrame

    from scoring.spark_job import run_spark

    def no_pandas(*_args, **_kwargs):
        raise AssertionError("the Spark engine converted a Spark frame to pandas on the driver")

    monkeypatch.setattr(DataFrame, "toPandas", no_pandas)
    local = run(ScoreRequest(world, tmp_path / "local.parquet", model=str(bundle_dir), workers=1))
    on_spark = run_spark(ScoreRequest(world, tmp_path / "spark.parquet", model=str(bundle_dir)), spark, buckets=3)
    parts = list((tmp_path / "spark.parquet").glob("part-*.parquet"))
    assert len(parts) >= 2  # written by the executors, not gathered here
    a, b = _sorted(tmp_path / "local.parquet"), _sorted(tmp_path / "spark.parquet")
    assert len(a) == local["rows"]["scored"] == on_spark["rows"]["scored"] > 1_000
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for key in SAME:
        assert local[key] == on_spark[key], key
    for key in ("fingerprint", "tables", "accounts", "extraction"):
        assert local["input"][key] == on_spark["input"][key], key
    written = (tmp_path / "spark.parquet" / "_manifest.json")
    assert written.exists() and (tmp_path / "spark.parquet" / "_report.html").exists()
    assert on_spark["run"]["engine"] == "spark" and on_spark["output"]["rows"] == len(b)
    assert not list(tmp_path.glob(".spark.parquet*"))  # no temporary folder left beside


def test_bad_rows_are_refused_with_the_local_engines_message_and_the_previous_output_kept(spark, world, bundle_dir,
                                                                                          tmp_path):
    import shutil

    from scoring.spark_job import run_spark

    out = tmp_path / "scores.parquet"
    run_spark(ScoreRequest(world, out, model=str(bundle_dir)), spark, buckets=2)
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    bad = tmp_path / "bad"
    shutil.copytree(world, bad)
    bills_path = next(p for p in (bad / "bills.parquet", bad / "bills") if p.exists())
    bills = pd.read_parquet(bills_path)
    bills.loc[bills.index[[5, 900, 4_000]], "due_date"] = bills["statement_date"].iloc[[5, 900, 4_000]].to_numpy() \
        - pd.Timedelta(days=3)
    shutil.rmtree(bills_path) if bills_path.is_dir() else bills_path.unlink()
    bills.to_parquet(bad / "bills.parquet", index=False)
    with pytest.raises(ScoreError) as local:
        run(ScoreRequest(bad, tmp_path / "local.parquet", model=str(bundle_dir), workers=1))
    with pytest.raises(ScoreError) as on_spark:
        run_spark(ScoreRequest(bad, out, model=str(bundle_dir), overwrite=True), spark, buckets=2)
    assert "3 of" in str(local.value) and str(on_spark.value) == str(local.value)
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before
    assert not list(tmp_path.glob(".scores.parquet*"))
    with pytest.raises(ScoreError, match="only with --overwrite"):
        run_spark(ScoreRequest(world, out, model=str(bundle_dir)), spark, buckets=2)


def test_score_py_runs_the_job_on_spark(spark, world, bundle_dir, tmp_path):  # spark: skips without pyspark
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out = tmp_path / "tonight.parquet"
    res = subprocess.run([sys.executable, str(ROOT / "score.py"), "--engine", "spark", "--spark-master", "local[2]",
                          "--data", str(world), "--model", str(bundle_dir), "--out", str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "FutureWarning" not in res.stderr
    assert "scored " in res.stdout and str(out) in res.stdout
    assert len(pq.read_table(out)) == int(res.stdout.split("scored ", 1)[1].split(" ", 1)[0].replace(",", ""))


def _copy_with(world: Path, out: Path, table: str, change) -> Path:
    """A copy of the world whose `table` is changed by change(frame) -> frame, written as one Parquet file."""
    import shutil

    shutil.copytree(world, out)
    path = next(p for p in (out / f"{table}.parquet", out / table) if p.exists())
    frame = change(pd.read_parquet(path))
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    frame.to_parquet(out / f"{table}.parquet", index=False)
    return out


def test_amounts_off_the_control_totals_and_bill_ids_repeated_across_customers_are_refused_as_locally(
        spark, world, bundle_dir, tmp_path):
    from scoring.spark_job import run_spark

    def one_cent_more(payments):
        payments.loc[payments.index[7], "amount"] += 0.01  # still a valid payment: only the sums tell
        return payments

    def repeated(bills):
        far = bills.index[[10, len(bills) // 2, len(bills) - 10]]  # three customers, across the groups
        bills.loc[far[1:], "bill_id"] = bills.loc[far[0], "bill_id"]
        return bills

    for name, table, change, words in (("cents", "payments", one_cent_more, "sum of amount"),
                                       ("ids", "bills", repeated, "bill_id is duplicated")):
        bad = _copy_with(world, tmp_path / name, table, change)
        with pytest.raises(ScoreError) as local:
            run(ScoreRequest(bad, tmp_path / f"{name}-local.parquet", model=str(bundle_dir), workers=1))
        with pytest.raises(ScoreError) as on_spark:
            run_spark(ScoreRequest(bad, tmp_path / f"{name}-spark.parquet", model=str(bundle_dir)), spark, buckets=3)
        assert words in str(local.value), name
        assert str(on_spark.value) == str(local.value), name
        assert not (tmp_path / f"{name}-spark.parquet").exists() and not list(tmp_path.glob(f".{name}-spark*"))

    lacking = _copy_with(world, tmp_path / "lacking", "accounts", lambda accounts: accounts.drop(columns="customer_id"))
    with pytest.raises(ScoreError, match=r"accounts\.customer_id is missing \(columns present: account_id, .*\) in "):
        run_spark(ScoreRequest(lacking, tmp_path / "lacking.parquet", model=str(bundle_dir)), spark, buckets=3)
    assert not (tmp_path / "lacking.parquet").exists()


def test_an_extract_laid_out_by_bucket_is_read_where_it_lies_and_scores_the_same(spark, world, bundle_dir,
                                                                                 tmp_path):
    from features.__main__ import main as features_main
    from features.spark_layout import LAYOUT, layout_of
    from scoring.spark_job import run_spark

    laid = tmp_path / "laid"
    res = subprocess.run([sys.executable, "-m", "features", "bucket", str(world), "--out", str(laid), "--buckets", "3",
                          "--spark-master", "local[2]"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "3 customer buckets" in res.stdout and "Traceback" not in res.stderr
    assert layout_of(laid) == 3 and (laid / LAYOUT).exists() and (laid / "bills" / "bucket=0").is_dir()
    assert features_main(["bucket", str(world), "--out", str(laid), "--buckets", "3"]) == 1  # never over a folder
    assert features_main(["bucket", str(laid), "--out", str(tmp_path / "twice"), "--buckets", "3"]) == 1
    local = run(ScoreRequest(world, tmp_path / "local.parquet", model=str(bundle_dir), workers=1))
    on_spark = run_spark(ScoreRequest(laid, tmp_path / "spark.parquet", model=str(bundle_dir)), spark)
    assert on_spark["run"]["laid_out"] and on_spark["run"]["buckets"] == 3
    a, b = _sorted(tmp_path / "local.parquet"), _sorted(tmp_path / "spark.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for key in SAME:
        assert local[key] == on_spark[key], key
    # the local engine reads the laid-out folder as the same tables
    again = run(ScoreRequest(laid, tmp_path / "again.parquet", model=str(bundle_dir), workers=1))
    pd.testing.assert_frame_equal(a, _sorted(tmp_path / "again.parquet"), check_exact=True)
    assert again["rows"] == local["rows"]

    # an account filed under another bucket than its customer's hash is refused before any group is scored
    folder = laid / "accounts" / "bucket=1"
    accounts = pd.concat([pd.read_parquet(part) for part in sorted(folder.glob("*.parquet"))])
    for part in folder.glob("*.parquet"):
        part.unlink()
    accounts.iloc[4:].to_parquet(folder / "rest.parquet", index=False)
    accounts.iloc[:4].to_parquet(laid / "accounts" / "bucket=2" / "moved.parquet", index=False)
    with pytest.raises(ScoreError, match=r"accounts\.customer_id lies in another bucket .* in 4 of "):
        run_spark(ScoreRequest(laid, tmp_path / "refused.parquet", model=str(bundle_dir)), spark)
    assert not (tmp_path / "refused.parquet").exists()
