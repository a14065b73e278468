"""An output path keeps one run's output, and the run report's figures are the scored rows' own.

Two tiny worlds with the same extraction date (so the same default output name) and a quickly trained model.
A run never replaces an output written from other inputs unless told to; the report's and the manifest's
figures -- reason codes, limit changes, expected losses, guardrails, changes since the last run -- are
recomputed here from the Parquet files the runs wrote.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import scoring.job
from features.contract import load_tables
from features.targets import LabelConfig
from policy.config import load_policy
from scoring.job import ScoreError, ScoreRequest, run
from scoring.output import manifest_path, report_path
from simulation.generate import Request, generate
from training.config import TrainConfig
from training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
JUNE, MAY = "2024-06-30", "2024-05-31"  # the worlds' extraction date, and a month before


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worlds")
    generate(folder / "a", Request(1_500, 18, seed=3), progress=False)
    generate(folder / "b", Request(1_200, 18, seed=5), progress=False)
    return folder / "a", folder / "b"


def _train(world: Path, folder: Path, rounds: int) -> Path:
    cfg = TrainConfig(targets=("default",), n_boot=10, num_boost_round=rounds, valid_months=2, test_months=1,
                      labels=LabelConfig(default_months=2))
    return train(load_tables(world), cfg, progress=lambda _: None).bundle.save(folder)


@pytest.fixture(scope="module")
def bundle(worlds, tmp_path_factory):
    return _train(worlds[0], tmp_path_factory.mktemp("bundle") / "bundle", 30)


@pytest.fixture(scope="module")
def nights(worlds, bundle, tmp_path_factory):
    """Two nights of world A in one folder: May, then June (which finds May's run to compare with)."""
    folder = tmp_path_factory.mktemp("nights")
    may = _score(worlds[0], folder / "may.parquet", bundle, as_of=MAY)
    june = _score(worlds[0], folder / "june.parquet", bundle, as_of=JUNE)
    return folder, may, june


def _score(data: Path, out: Path | None, bundle: Path, **kw) -> dict:
    return run(ScoreRequest(Path(data), out, model=str(bundle), **{"workers": 1, "chunk_size": 500, **kw}))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _main(args: list[str], capsys) -> tuple[int, str, str]:
    """score.py's main, in this process (one worker: the chunks run here too)."""
    sys.path.insert(0, str(ROOT))
    try:
        import score
    finally:
        sys.path.remove(str(ROOT))
    code = score.main(["--workers", "1", *args])
    said = capsys.readouterr()
    return code, said.out, said.err


# ------------------------------------------------------------------------------- an output path keeps its output


def test_a_run_on_another_data_folder_keeps_the_output_unless_told_to_overwrite(worlds, bundle, tmp_path, capsys,
                                                                                 monkeypatch):
    a, b = worlds
    out = tmp_path / "scores.parquet"
    code, _, _ = _main(["--model", str(bundle), "--data", str(a), "--out", str(out)], capsys)
    assert code == 0
    before = _files(tmp_path)
    loads = []
    real_bundle = scoring.job._bundle
    monkeypatch.setattr(scoring.job, "_bundle", lambda *x: loads.append(1) or real_bundle(*x))

    code, _, err = _main(["--model", str(bundle), "--data", str(b), "--out", str(out)], capsys)
    assert code == 1 and "Traceback" not in err
    assert err == (f"error: {out} was written from other inputs than this run's, and is kept:\n"
                   f"  data folder: {a.resolve()} (this run: {b.resolve()})\n"
                   "Pass --overwrite to replace it, or --out FILE to write this run elsewhere.\n")
    assert _files(tmp_path) == before and loads == [], "refused before the model loaded, with nothing written"

    code, _, _ = _main(["--model", str(bundle), "--data", str(b), "--out", str(out), "--overwrite"], capsys)
    assert code == 0 and loads == [1]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["input"]["data"] == str(b.resolve()) and manifest["rows"]["scored"] == len(pd.read_parquet(out))
    assert str(b.resolve()) in report_path(out).read_text()


def test_a_rerun_with_the_same_inputs_replaces_its_own_output(worlds, bundle, tmp_path):
    out = tmp_path / "scores.parquet"
    first = _score(worlds[0], out, bundle)
    scores = pq.read_table(out)
    again = _score(worlds[0], out, bundle, chunk_size=700)  # how the run goes is not an input
    assert pq.read_table(out).equals(scores) and again["input"] == first["input"]
    assert again["rows"] == first["rows"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.manifest.json", "scores.parquet",
                                                          "scores.report.html"]


def test_the_default_output_of_another_data_folder_on_the_same_date_is_refused(worlds, bundle, tmp_path,
                                                                                monkeypatch):
    """The default name depends only on the as-of date: the demo's scores were replaced by another folder's."""
    monkeypatch.chdir(tmp_path)
    a, b = worlds
    _score(a, None, bundle)
    before = _files(tmp_path)
    with pytest.raises(ScoreError) as refused:
        _score(b, None, bundle)
    out = Path("scores") / f"scores-{JUNE}.parquet"
    assert str(refused.value) == (f"{out} was written from other inputs than this run's, and is kept:\n"
                                  f"  data folder: {a.resolve()} (this run: {b.resolve()})\n"
                                  "Pass --overwrite to replace it, or --out FILE to write this run elsewhere.")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("change", ["input files", "policy", "model", "as-of date", "no manifest"])
def test_other_inputs_are_refused_before_any_chunk_is_scored(change, worlds, bundle, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(worlds[0], data)
    out = tmp_path / "out" / "scores.parquet"
    written = _score(data, out, bundle, as_of=MAY)
    kw: dict = {"as_of": MAY}
    if change == "input files":  # the same folder holds another extract now
        shutil.rmtree(data)
        shutil.copytree(worlds[1], data)
        expected = f"input files' SHA-256: {written['input']['fingerprint'][:12]} (this run: "
    elif change == "policy":
        config = tmp_path / "policy.toml"
        config.write_text("[limit]\nel_budget = 300.0\n")
        kw["policy"] = config
        expected = f"policy hash: {written['policy']['hash'][:12]} (this run: {load_policy(config).hash[:12]})"
    elif change == "model":
        bundle = _train(worlds[0], tmp_path / "other_bundle", 12)
        expected = f"model: {written['model']['version']} (this run: bundle:"
    elif change == "as-of date":
        kw["as_of"] = "2024-06-15"
        expected = f"as-of date: {MAY} (this run: 2024-06-15)"
    else:
        manifest_path(out).unlink()
        expected = (f"{out} is there without a readable manifest (scores.manifest.json), so what it was written "
                    "from is unknown; it is kept.")
    before = _files(out.parent)
    monkeypatch.setattr(scoring.job, "_results", lambda *_: pytest.fail("a chunk was scored before the refusal"))
    with pytest.raises(ScoreError) as refused:
        _score(data, out, bundle, **kw)
    assert expected in str(refused.value) and "--overwrite" in str(refused.value)
    assert _files(out.parent) == before
