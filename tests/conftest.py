"""Shared fixtures: small synthetic worlds, generated once per test session."""
from __future__ import annotations

import pytest

from features.contract import load_tables
from simulation.generate import Request, generate


@pytest.fixture(scope="session")
def baseline_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "baseline"
    summary = generate(out, Request(30_000, 36, seed=3, scenario="baseline", shock_month=18), progress=False)
    return out, summary


@pytest.fixture(scope="session")
def shock_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "shock"
    summary = generate(out, Request(30_000, 36, seed=3, scenario="shock", shock_month=18), progress=False)
    return out, summary


@pytest.fixture(scope="session")
def baseline_tables(baseline_dir):
    return load_tables(baseline_dir[0], optional=("macro", "truth"))
