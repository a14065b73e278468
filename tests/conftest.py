"""Shared fixtures: small synthetic worlds, generated once per test session.

A world of 12,000 open accounts: over its 36 history and 36 as-of months about 43,000 accounts are opened
(customers arrive, lines close, loans are repaid), near the 30,000 the suite read before the book lived. A
test that needs more rows for its statistics has a world of its own.
"""
from __future__ import annotations

import os

# OpenMP threads (numba's parallel kernels, LightGBM) sleep while they wait instead of spinning. On a machine
# shared with other work, a spinning thread holds a core the others need and every parallel region then waits
# for the scheduler: with another job on one of 2 cores, 5 ms a small kernel call instead of 0.1 ms, and the
# point-in-time property of the latent features took 193 s instead of 63 s. Set before any OpenMP runtime loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from features.contract import load_tables
from simulation.generate import Request, generate

BOOK = 12_000  # open accounts the session worlds hold at the end


@pytest.fixture(scope="session")
def baseline_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "baseline"
    summary = generate(out, Request(BOOK, 36, seed=3, scenario="baseline", shock_month=18), progress=False)
    return out, summary


@pytest.fixture(scope="session")
def shock_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "shock"
    summary = generate(out, Request(BOOK, 36, seed=3, scenario="shock", shock_month=18), progress=False)
    return out, summary


@pytest.fixture(scope="session")
def baseline_tables(baseline_dir):
    return load_tables(baseline_dir[0], optional=("macro", "truth"))


@pytest.fixture(scope="session")
def trained(baseline_tables):
    """Every declared target trained on the baseline world with the latent-state filter, once: test_models reads
    its evidence, test_scoring scores with its bundle (a target's model is the same bytes whatever targets are
    trained beside it: test_models proves it)."""
    from training.config import TrainConfig
    from training.trainer import train

    return train(baseline_tables, TrainConfig(n_boot=50, latent_state=True), progress=lambda _: None)


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for every Spark test (starting one takes seconds). pyspark is the optional
    `[spark]` extra: without it these tests skip and say why, except under CI=true (`.ci/run` installs it)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("pyspark is not installed (pip install -e '.[spark]' to run the Spark tests)")
    from features.spark_session import spark_session

    session = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    yield session
    session.stop()
