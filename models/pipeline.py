"""The training job end to end: histories -> panel -> models -> report -> mlflow run and registry.

train.py is a thin CLI over `run_training`; benchmarks and tests call it directly.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from features.contract import load_tables
from models.tracking import LoggedRun, log_training
from models.training import TrainConfig, TrainResult, supplied_labels, train
from validation.training_report import write_training_report

CATALOG_PAGE = Path(__file__).resolve().parent.parent / "docs" / "features.md"


@dataclass
class TrainingRun:
    result: TrainResult
    logged: LoggedRun
    report: Path
    seconds: dict[str, float]


def run_training(data_dir: Path, cfg: TrainConfig, *, uri: str, experiment: str, model_name: str,
                 reports_dir: Path, labels_file: Path | None = None, ece_tolerance: float = 0.005,
                 progress: Callable[[str], None] = print) -> TrainingRun:
    t0 = time.perf_counter()
    tables = load_tables(data_dir, optional=("macro", "truth"))
    labels = supplied_labels(labels_file) if labels_file else None
    t_load = time.perf_counter() - t0
    result = train(tables, cfg, labels=labels, progress=progress)
    t1 = time.perf_counter()
    report = write_training_report(result, reports_dir)
    t_report = time.perf_counter() - t1
    progress(f"report: {report} ({t_report:.1f} s)")
    extra = {"catalog": CATALOG_PAGE} if CATALOG_PAGE.exists() else {}
    t2 = time.perf_counter()
    logged = log_training(result, model_name=model_name, experiment=experiment, uri=uri, report_path=report,
                          extra_artifacts=extra, params={"data": str(data_dir)}, config=cfg,
                          tolerance_ece=ece_tolerance)
    seconds = {"load_s": t_load, **result.timings, "report_s": t_report, "tracking_s": time.perf_counter() - t2,
               "wall_s": time.perf_counter() - t0}
    return TrainingRun(result, logged, report, seconds)
