"""The training job end to end: histories -> panel -> models -> report -> mlflow run and registry.

train.py is a thin CLI over `run_training`; benchmarks and tests call it directly.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from features.extract_manifest import load_extract
from training.tracking import LoggedRun, log_training
from training.trainer import TrainConfig, TrainResult, supplied_labels, train
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
                 progress: Callable[[str], None] = print, extracted_on: str | None = None) -> TrainingRun:
    """Train on the extract in `data_dir` (extraction date: `extracted_on`, else its manifest's, else derived)."""
    t0 = time.perf_counter()
    tables = load_extract(data_dir, extracted_on=extracted_on, optional=("macro", "truth"))
    if tables.extraction is not None:
        progress(("warning: " if tables.extraction.derived else "") + tables.extraction.note)
    labels = supplied_labels(labels_file) if labels_file else None
    t_load = time.perf_counter() - t0
    trials: list[dict] = []

    def on_trial(target: str, number: int, params: dict, loss: float, rounds: int) -> None:
        trials.append({"target": target, "number": number, "params": params, "valid_log_loss": loss,
                       "rounds": rounds})
        progress(f"    trial {number}: validation log loss {loss:.5f} after {rounds} rounds")

    result = train(tables, cfg, labels=labels, progress=progress, on_trial=on_trial)
    t1 = time.perf_counter()
    report = write_training_report(result, reports_dir)
    t_report = time.perf_counter() - t1
    progress(f"report: {report} ({t_report:.1f} s)")
    extra = {"catalog": CATALOG_PAGE} if CATALOG_PAGE.exists() else {}
    t2 = time.perf_counter()
    logged = log_training(result, model_name=model_name, experiment=experiment, uri=uri, report_path=report,
                          extra_artifacts=extra, params={"data": str(data_dir)}, config=cfg,
                          tolerance_ece=ece_tolerance)
    if trials:
        _log_trials(uri, logged.run_id, trials)
    seconds = {"load_s": t_load, **result.timings, "report_s": t_report, "tracking_s": time.perf_counter() - t2,
               "wall_s": time.perf_counter() - t0}
    return TrainingRun(result, logged, report, seconds)


def _log_trials(uri: str, parent_run_id: str, trials: list[dict]) -> None:
    """Each tuning trial as a nested run under the training run: its parameters and validation loss."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.get_run(parent_run_id).info.experiment_id
    with mlflow.start_run(run_id=parent_run_id):
        for t in trials:
            with mlflow.start_run(run_name=f"{t['target']}-trial-{t['number']}", nested=True,
                                  experiment_id=experiment_id):
                mlflow.log_params({"target": t["target"], "trial": t["number"], **t["params"]})
                mlflow.log_metrics({"valid_log_loss": t["valid_log_loss"], "rounds": t["rounds"]})
