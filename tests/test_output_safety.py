"""The scoring job's output is never lost or half-written, and two runs on one --out do not fight.

A tiny world and a quickly trained model: the failures under test happen around the output, not in the scores.
Each failing run is checked for its message, for nothing new at or beside --out (no temporary or lock file,
no folder) and for the previous output (scores, manifest, report) left byte for byte as it was.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import scoring.job
from features.contract import load_tables
from features.targets import LabelConfig
from scoring.job import ScoreError, ScoreRequest, run
from scoring.output import manifest_path, report_path, sha256
from simulation.generate import Request, generate
from training.config import TrainConfig
from training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("scores.parquet", "scores.manifest.json", "scores.report.html")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("worlds") / "tiny"
    generate(out, Request(1_500, 18, seed=3), progress=False)
    return out


@pytest.fixture(scope="module")
def bundle(world, tmp_path_factory):
    # one target, few rounds and short slices: 18 months of history hold them, and it trains in seconds
    cfg = TrainConfig(targets=("default",), n_boot=10, num_boost_round=30, valid_months=2, test_months=1,
                      labels=LabelConfig(default_months=2))
    result = train(load_tables(world), cfg, progress=lambda _: None)
    return result.bundle.save(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="module")
def reference(world, bundle, tmp_path_factory):
    """A complete output (scores, manifest, report): what a later run finds as the previous output."""
    out = tmp_path_factory.mktemp("reference") / "scores.parquet"
    manifest = _score(world, out, bundle)
    assert {p.name for p in out.parent.iterdir()} == set(OUTPUTS)
    return out, manifest


@pytest.fixture
def previous(reference, tmp_path) -> Path:
    """A copy of the reference output in a folder of its own; returns its --out path."""
    folder = tmp_path / "out"
    folder.mkdir()
    for name in OUTPUTS:
        shutil.copy2(reference[0].with_name(name), folder / name)
    return folder / "scores.parquet"


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Loading the model or surveying the data fails the test: a refusal must come before either."""
    def heavy(*_, **__):
        raise AssertionError("the run loaded the model or surveyed the data before refusing the output")

    monkeypatch.setattr(scoring.job, "_bundle", heavy)
    monkeypatch.setattr(scoring.job, "survey", heavy)


def _score(data: Path, out: Path | None, bundle: Path, **kw) -> dict:
    return run(ScoreRequest(Path(data), out, model=str(bundle), workers=1, chunk_size=400, **kw))


def _files(folder: Path) -> dict[str, bytes | None]:
    """Every file (hidden ones too) and folder under `folder`, with the files' bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@contextmanager
def _held_by_another_run(out: Path, pid: int):
    """The lock a live run holds on `out`: `.<name>.lock` beside it, flock-ed, with the run's pid in it."""
    fd = os.open(out.with_name(f".{out.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{pid}\n".encode())
        yield
    finally:
        out.with_name(f".{out.name}.lock").unlink()
        os.close(fd)


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(ROOT / "score.py"), "--workers", "1", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)


# ------------------------------------------------------------------------------- outputs that cannot be written


def _deny_writes_as_root(folder: Path, monkeypatch) -> None:
    """chmod does not stop root: make creating a file in `folder` fail as the kernel does for anyone else."""
    real = os.open

    def open_(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("case", ["a folder", "under a file", "in a read-only folder"])
def test_an_output_that_cannot_be_written_is_refused_before_any_heavy_work(case, world, bundle, previous,
                                                                           no_heavy_work, monkeypatch):
    folder = previous.parent
    if case == "a folder":
        out = folder / "dataset.parquet"
        out.mkdir()
        (out / "part-0.parquet").write_bytes(b"someone's data")
        expected = (f"--out {out}: {out} is a folder; name a new Parquet file (e.g. {out / 'scores.parquet'}) or "
                    "move the folder away")
    elif case == "under a file":
        (folder / "notes.txt").write_text("not a folder")
        out = folder / "notes.txt" / "daily" / "scores.parquet"
        expected = f"--out {out}: {folder / 'notes.txt'} is a file, not a folder; choose another --out"
    else:
        out = previous
        expected = (f"--out {out}: cannot write in the folder {folder} (it is read-only for this user); choose "
                    "another --out or make the folder writable")
        if os.geteuid() == 0:
            _deny_writes_as_root(folder, monkeypatch)
    before = _files(folder)
    folder.chmod(0o555 if case == "in a read-only folder" else 0o755)
    try:
        with pytest.raises(ScoreError) as failed:
            _score(world, out, bundle)
    finally:
        folder.chmod(0o755)
    assert str(failed.value) == expected
    assert _files(folder) == before


def test_cli_refuses_an_output_that_is_a_folder_without_a_traceback(bundle, world, previous):
    out = previous.parent / "dataset.parquet"
    out.mkdir()
    before = _files(previous.parent)
    done = _cli(["--model", str(bundle), "--data", str(world), "--out", str(out)])
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"error: --out {out}: {out} is a folder; name a new Parquet file (e.g. {out / 'scores.parquet'}) " \
           "or move the folder away" in done.stderr
    assert _files(previous.parent) == before


def test_a_failed_run_removes_the_folders_it_made(world, bundle, tmp_path):
    out = tmp_path / "new" / "daily" / "scores.parquet"
    with pytest.raises(ScoreError, match="after the data's extraction date"):
        _score(world, out, bundle, as_of="2031-01-31")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("part", ["scores", "report", "manifest"])
def test_a_full_disk_fails_clearly_leaves_no_temporary_file_and_keeps_the_previous_output(part, world, bundle,
                                                                                          previous, monkeypatch):
    before = _files(previous.parent)
    target = {"scores": previous, "report": report_path(previous), "manifest": manifest_path(previous)}[part]
    partial = []  # the temporary files the disk filled up, which the run must remove

    if part == "scores":  # the second chunk of four does not fit
        real = pq.ParquetWriter.write_table
        calls = []

        def write_table(self, table, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                partial.extend(previous.parent.glob(".scores.parquet.part-*"))
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, table, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)
    else:  # half of the text is written, then the disk is full
        real = Path.write_text

        def write_text(self, data, *args, **kwargs):
            if self.name.startswith(f".{target.name}.part-"):
                real(self, data[: len(data) // 2], *args, **kwargs)
                partial.append(self)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(self, data, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(ScoreError) as failed:
        _score(world, previous, bundle)
    assert str(failed.value) == f"no space left on device while writing {target}: free space or choose another --out"
    assert partial, "the disk filled up while a temporary file was being written"
    assert _files(previous.parent) == before


# ------------------------------------------------------------------------------- two runs, one output


def test_a_second_run_on_the_same_output_fails_at_once_and_the_first_completes(world, bundle, reference, previous,
                                                                               monkeypatch):
    loads = []
    real_bundle = scoring.job._bundle
    monkeypatch.setattr(scoring.job, "_bundle", lambda *a: loads.append(1) or real_bundle(*a))
    second: list[Exception] = []

    def progress(done: int, total: int) -> None:
        if done == 1:  # the first run is writing its temporary file: start another one on the same --out
            assert list(previous.parent.glob(".scores.parquet.part-*"))
            with pytest.raises(ScoreError) as failed:
                _score(world, previous, bundle)
            second.append(failed.value)
            assert list(previous.parent.glob(".scores.parquet.part-*")), "the second run left the first's file"

    manifest = run(ScoreRequest(world, previous, model=str(bundle), workers=1, chunk_size=400), progress)
    assert [str(e) for e in second] == [f"another scoring run (pid {os.getpid()}) is writing {previous}; wait for "
                                        "it or choose another --out"]
    assert loads == [1], "the second run stopped before loading the model"
    assert sorted(p.name for p in previous.parent.iterdir()) == sorted(OUTPUTS)
    assert manifest["output"]["sha256"] == sha256(previous) and manifest["run"]["chunks"] >= 4
    assert pq.read_table(previous).equals(pq.read_table(reference[0]))


def test_cli_refuses_an_output_another_run_is_writing(bundle, world, previous):
    before = _files(previous.parent)
    with _held_by_another_run(previous, 4242):
        done = _cli(["--model", str(bundle), "--data", str(world), "--out", str(previous)])
        assert _files(previous.parent) == {**before, ".scores.parquet.lock": b"4242\n"}
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"error: another scoring run (pid 4242) is writing {previous}; wait for it or choose another --out" \
           in done.stderr


def test_the_default_output_is_locked_too(world, bundle, reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Path("scores") / f"scores-{reference[1]['as_of']}.parquet"
    out.parent.mkdir()
    with _held_by_another_run(out, 4242), pytest.raises(ScoreError) as failed:
        _score(world, None, bundle)
    assert str(failed.value) == f"another scoring run (pid 4242) is writing {out}; wait for it or choose another --out"
    assert list(out.parent.iterdir()) == []


def test_what_a_killed_run_left_does_not_block_the_next_run(world, bundle, reference, previous):
    """A killed run leaves its lock file (the kernel dropped the lock) and its temporary files."""
    folder = previous.parent
    (folder / ".scores.parquet.lock").write_text("999999\n")
    (folder / ".scores.parquet.part-999999").write_bytes(b"PAR1 half a file")
    (folder / ".scores.manifest.json.part-999999").write_text("{")
    _score(world, previous, bundle)
    assert sorted(p.name for p in folder.iterdir()) == sorted(OUTPUTS)
    assert pq.read_table(previous).equals(pq.read_table(reference[0]))
