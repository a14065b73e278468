"""What a scoring run writes: one Parquet file of decisions and a JSON manifest beside it, both atomic.

Both are written to hidden temporary siblings and renamed into place, the Parquet file first and then the
manifest that describes it: a killed or failed job leaves nothing at the output path, and a manifest
always matches the file next to it (it holds the file's SHA-256).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# 2: a model's columns are null outside the population its target is scored on (features/targets.py):
#    pd_default, model_score, score and score_adjustment for charged-off accounts, p_self_cure outside 1-29 DPD
SCHEMA_VERSION = 2
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
    ("control_cell", pa.bool_()),
    ("credit_limit", pa.float64()),
    ("new_credit_limit", pa.float64()),
    ("limit_action", pa.string()),
    ("adverse", pa.bool_()),
    *[(f"reason_{i}", pa.string()) for i in range(1, REASONS + 1)],
    *[(f"reason_text_{i}", pa.string()) for i in range(1, REASONS + 1)],
    ("model_version", pa.string()),
    ("schema_version", pa.int32()),
])
# columns a bundle without the early-warning or self-cure model leaves out
TARGET_COLUMNS = {"early_warning": ("p_early_warning", "early_warning", "early_warning_action"),
                  "self_cure": ("p_self_cure",)}


def schema_for(targets: list[str]) -> pa.Schema:
    drop = [c for t, cols in TARGET_COLUMNS.items() if t not in targets for c in cols]
    return pa.schema([f for f in SCHEMA if f.name not in drop])


def manifest_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".parquet") + ".manifest.json")


def report_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".parquet") + ".report.html")


def temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.part-{os.getpid()}")


def clear_leftovers(out: Path) -> None:
    """Temporary files of an earlier run of the same output that was killed."""
    for path in (out, manifest_path(out), report_path(out)):
        for stale in path.parent.glob(f".{path.name}.part-*"):
            stale.unlink(missing_ok=True)


class AtomicParquet:
    """A Parquet writer whose file appears at `out` only when `commit` is called."""

    def __init__(self, out: Path, schema: pa.Schema) -> None:
        self.out = Path(out)
        self.tmp = temporary(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(self.tmp, schema)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def commit(self, manifest: dict, report: str | None = None) -> dict:
        """Rename the scores into place, then the report, then the manifest that names them both."""
        self.writer.close()
        manifest = {**manifest, "output": {"path": str(self.out), "rows": self.rows, "sha256": sha256(self.tmp)}}
        if report is not None:
            manifest["report"] = str(report_path(self.out))
            report_tmp = temporary(report_path(self.out))
            report_tmp.write_text(report)
        meta_tmp = temporary(manifest_path(self.out))
        meta_tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        os.replace(self.tmp, self.out)
        if report is not None:
            os.replace(report_tmp, report_path(self.out))
        os.replace(meta_tmp, manifest_path(self.out))
        return manifest

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def sha256(path: Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(folder: Path, files: list[Path]) -> str:
    """SHA-256 over the input files' names (relative to `folder`) and contents: what exactly was scored."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(sha256(path).encode())
    return h.hexdigest()
