"""What a scoring run writes: one Parquet file of decisions, a JSON manifest and an HTML report beside it.

This module owns the output's paths. A run first claims `--out` (`claim`): the path is checked and an
advisory lock taken before any heavy work, so a bad or busy output fails in a second and two runs never
delete each other's files. Everything is then written to hidden temporary siblings and renamed into place,
the Parquet file first and the manifest that describes it last: a killed or failed job leaves nothing at
the output path, the previous output stays whole, and a manifest always matches the file next to it (it
holds the file's SHA-256).

An output path holds one run's output; a later run replaces it only when it was written from the same inputs
(`Existing`): the same data folder and input files, as-of date, model version and policy. Any other run,
say on another data folder whose as-of date gives the same default name, is refused unless it is told to
overwrite.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.file_digest import fingerprint_of, sha256
from scoring.errors import ScoreError

# 2: a model's columns are null outside the population its target is scored on (features/targets.py):
#    pd_default, model_score, score and score_adjustment for charged-off accounts, p_self_cure outside 1-29 DPD
# 3: every column is always there; a model the bundle lacks leaves its columns null (TARGET_COLUMNS). A
#    charged-off account has no dpd_now and is never in the control cell. collection_intended (the treatment the
#    policy intends) and treatment_probability (the chance of the treatment given, for effect measurement)
# 4: status `closed` beside active, new and charged_off (accounts.close_date on or before the as-of date): no
#    PD, score or early warning and never in the control cell, but its dpd_now kept and, when late, a collection
#    treatment; limit_action `already_closed` with new_credit_limit 0
SCHEMA_VERSION = 4
REASONS = 4

SCHEMA = pa.schema([
    ("account_id", pa.int64()),
    ("as_of", pa.date32()),
    ("status", pa.string()),
    ("product", pa.string()),
    ("pd_default", pa.float64()),
    ("model_score", pa.float64()),
    ("score", pa.float64()),
    ("previous_score", pa.float64()),
    ("score_adjustment", pa.float64()),
    ("p_early_warning", pa.float64()),
    ("early_warning", pa.bool_()),
    ("early_warning_action", pa.string()),
    ("p_self_cure", pa.float64()),
    ("dpd_now", pa.float64()),
    ("collection_treatment", pa.string()),
    ("collection_intended", pa.string()),
    ("control_cell", pa.bool_()),
    ("treatment_probability", pa.float64()),
    ("credit_limit", pa.float64()),
    ("new_credit_limit", pa.float64()),
    ("limit_action", pa.string()),
    ("adverse", pa.bool_()),
    *[(f"reason_{i}", pa.string()) for i in range(1, REASONS + 1)],
    *[(f"reason_text_{i}", pa.string()) for i in range(1, REASONS + 1)],
    ("model_version", pa.string()),
    ("schema_version", pa.int32()),
])
# the columns of a model the bundle may lack: null in every row when it does (the default model is required)
TARGET_COLUMNS = {"early_warning": ("p_early_warning", "early_warning", "early_warning_action"),
                  "self_cure": ("p_self_cure",)}


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".parquet") + ".manifest.json")


def report_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".parquet") + ".report.html")


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


def temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.part-{os.getpid()}")


_HELD: set[Path] = set()  # outputs this process has claimed


@contextmanager
def claim(out: Path) -> Iterator[Path]:
    """Hold `out` for one run: refuse an output that cannot be written or that another run is writing.

    Creates the missing folders, then takes an exclusive, advisory `fcntl.flock` on the lock file
    `.<name>.lock` beside the output (it holds only the holder's pid, for a second run's message) and clears
    the temporary files of earlier, killed runs. The lock is released and its file removed when the block
    ends; folders it created are removed again if the run failed and left them empty. The kernel drops a
    killed run's lock, so the lock file such a run leaves never blocks the next one.
    """
    out = Path(out)
    try:
        created = _make_folders(out)
    except OSError as exc:  # a folder on the way that this user may not look into
        raise ScoreError(f"--out {out}: cannot reach it ({exc.strerror}); choose another --out") from None
    done, fd = False, None
    try:
        fd = _lock(out)
        _HELD.add(out)
        clear_leftovers(out)
        yield out
        done = True
    finally:
        if fd is not None:
            _release(out, fd)
        if not done:
            _remove_empty(created)


def _make_folders(out: Path) -> list[Path]:
    """The folders created for `out`, deepest first; refuses an output that is a folder or under a file."""
    for path in (out, manifest_path(out), report_path(out)):
        if path.is_dir():
            raise ScoreError(f"--out {out}: {path} is a folder; name a new Parquet file (e.g. "
                             f"{path / 'scores.parquet'}) or move the folder away")
    missing = []
    for folder in (out.parent, *out.parent.parents):
        if folder.is_dir():
            break
        if folder.exists():
            raise ScoreError(f"--out {out}: {folder} is a file, not a folder; choose another --out")
        missing.append(folder)
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # another run made it meanwhile: its folder, not ours to remove
            continue
        except OSError as exc:
            _remove_empty(created[::-1])
            raise ScoreError(f"--out {out}: cannot create the folder {folder} ({exc.strerror}); choose another "
                             "--out or create the folder first") from None
        created.append(folder)
    return created[::-1]


def _lock(out: Path) -> int:
    """An open, exclusively locked descriptor of `out`'s lock file, with this process's pid in it."""
    path = lock_path(out)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            reason = "it is read-only for this user" if isinstance(exc, PermissionError) else exc.strerror
            raise ScoreError(f"--out {out}: cannot write in the folder {out.parent} ({reason}); choose another "
                             "--out or make the folder writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise ScoreError(f"another scoring run{pid} is writing {out}; wait for it or choose another "
                             "--out") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file as we opened it: lock the one now at the path
    with suppress(OSError):  # only for a second run's message: a full disk fails later, naming the output
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release(out: Path, fd: int) -> None:
    """Remove the lock file, then unlock: a run that opens it meanwhile sees a removed file and retries."""
    _HELD.discard(out)
    try:
        lock_path(out).unlink(missing_ok=True)
    finally:
        os.close(fd)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with suppress(OSError):
            folder.rmdir()


def clear_leftovers(out: Path) -> None:
    """Temporary files of an earlier run of the same output that was killed.

    Only under `claim`'s lock: without it the files could be a live run's.
    """
    if out not in _HELD:
        raise RuntimeError(f"clear_leftovers({out}) without claiming the output first")
    for path in (out, manifest_path(out), report_path(out)):
        for stale in path.parent.glob(f".{path.name}.part-*"):
            stale.unlink(missing_ok=True)


# what identifies the inputs of an output: (what, where its manifest says it). A run whose own differ would
# write other decisions, so it may not replace the output without --overwrite. How the run went (chunks,
# workers, --reasons, --previous) does not count: the scores and limit decisions are the same.
ORIGIN = (("data folder", ("input", "data")), ("input files' SHA-256", ("input", "fingerprint")),
          ("as-of date", ("as_of",)), ("model", ("model", "version")), ("policy hash", ("policy", "hash")),
          ("extra columns", ("input", "extra", "fingerprint")))
DATA_FOLDER, INPUT_FILES = ORIGIN[0][0], ORIGIN[1][0]


def read_manifest(path: Path) -> dict | None:
    """A manifest's content; None when it is missing or not a manifest."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def origin(manifest: dict) -> dict[str, str]:
    """What a manifest (or the part of one a run knows so far) says its output was written from; the data
    folder as an absolute path (a relative one, from a manifest of an older version, taken from here)."""
    found = {}
    for what, keys in ORIGIN:
        value = manifest
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            found[what] = str(Path(value).resolve()) if what == DATA_FOLDER else str(value)
    return found


@dataclass(frozen=True)
class Existing:
    """An output found at a claimed path, and what its manifest says it was written from (None: the manifest
    is missing or unreadable, so nothing is known of it)."""

    out: Path
    written_from: dict[str, str] | None

    @classmethod
    def at(cls, out: Path) -> Existing | None:
        """The output at `out`, if any of its files is there; read only under `claim`'s lock."""
        if not any(p.exists() for p in (out, manifest_path(out), report_path(out))):
            return None
        manifest = read_manifest(manifest_path(out))
        return cls(out, None if manifest is None else origin(manifest))

    def knows(self, what: str) -> bool:
        """Whether comparing `what` can still decide anything: the manifest knows it."""
        return self.written_from is not None and what in self.written_from

    def refuse_other(self, this_run: dict[str, str]) -> None:
        """Refuse to replace the output when what this run knows so far of its inputs differs from it."""
        todo = "Pass --overwrite to replace it, or --out FILE to write this run elsewhere."
        if self.written_from is None:
            raise ScoreError(f"{self.out} is there without a readable manifest ({manifest_path(self.out).name}), "
                             f"so what it was written from is unknown; it is kept. {todo}")
        differ = [what for what, value in this_run.items()
                  if what in self.written_from and self.written_from[what] != value]
        if differ:
            lines = "".join(f"\n  {what}: {_short(self.written_from[what])} (this run: {_short(this_run[what])})"
                            for what in differ)
            raise ScoreError(f"{self.out} was written from other inputs than this run's, and is kept:{lines}\n"
                             f"{todo}")


def _short(value: str) -> str:
    """A SHA-256 by its first 12 characters, anything else whole."""
    return value[:12] if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else value


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turns a failed write of `path` (a full disk, a lost mount) into a ScoreError that names it."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ScoreError(f"no space left on device while writing {path}: free space or choose another "
                             "--out") from None
        raise ScoreError(f"could not write {path} ({exc.strerror or exc}): check the folder {path.parent} or "
                         "choose another --out") from None


class AtomicParquet:
    """A Parquet writer whose file appears at `out` only when `commit` is called; `out` must be claimed."""

    def __init__(self, out: Path, schema: pa.Schema) -> None:
        self.out = Path(out)
        self.tmp = temporary(self.out)
        self.rows = 0
        try:
            with _writing(self.out):
                self.writer = pq.ParquetWriter(self.tmp, schema)
        except ScoreError:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, table: pa.Table) -> None:
        with _writing(self.out):
            self.writer.write_table(table)
        self.rows += table.num_rows

    def commit(self, manifest: dict, report: str | None = None) -> dict:
        """Rename the scores into place, then the report, then the manifest that names them both.

        Everything is written before the first rename, so a full disk fails with the previous output whole.
        """
        with _writing(self.out):
            self.writer.close()
        manifest = {**manifest, "output": {"path": str(self.out), "rows": self.rows, "sha256": sha256(self.tmp)}}
        if report is not None:
            manifest["report"] = str(report_path(self.out))
            with _writing(report_path(self.out)):
                temporary(report_path(self.out)).write_text(report)
        with _writing(manifest_path(self.out)):
            temporary(manifest_path(self.out)).write_text(json.dumps(manifest, indent=1, sort_keys=True,
                                                                     default=str))
        with _writing(self.out):
            os.replace(self.tmp, self.out)
            if report is not None:
                os.replace(temporary(report_path(self.out)), report_path(self.out))
            os.replace(temporary(manifest_path(self.out)), manifest_path(self.out))
        return manifest

    def abort(self) -> None:
        """Remove this run's temporary files; a writer that failed to close is given up, not raised again."""
        with suppress(Exception):
            self.writer.close()
        for path in (self.out, report_path(self.out), manifest_path(self.out)):
            temporary(path).unlink(missing_ok=True)


def fingerprint(folder: Path, files: list[Path]) -> str:
    """SHA-256 over the input files' names (relative to `folder`) and contents: what exactly was scored."""
    return fingerprint_of((path.relative_to(folder).as_posix(), sha256(path)) for path in files)
