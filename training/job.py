"""The training job end to end: histories -> panel -> models -> report -> mlflow run and registry.

train.py is a thin CLI over `run_training`; benchmarks and tests call it directly.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from features.catalog import default_catalog
from features.cli import registry_notes_held_back
from features.extra import ExtraColumns, check_accounts, read_extra, taken_names
from features.extract_manifest import load_extract
from models.latent_state import taken_by_latent
from review.training import write_training_pack
from training.tracking import LoggedRun, log_training
from training.trainer import TrainConfig, TrainResult, supplied_labels, train

CATALOG_PAGE = Path(__file__).resolve().parent.parent / "docs" / "features.md"


@dataclass
class TrainingRun:
    result: TrainResult
    logged: LoggedRun
    report: Path | None  # None when trained on a panel folder (no histories for the pack)
    seconds: dict[str, float]
    bundle_dir: Path | None = None  # the run's bundle/ artifact when the artifact store is a local folder


def run_training(data_dir: Path | None, cfg: TrainConfig, *, uri: str, experiment: str, model_name: str,
                 reports_dir: Path, labels_file: Path | None = None, ece_tolerance: float = 0.005,
                 progress: Callable[[str], None] = print, extracted_on: str | None = None,
                 extra_file: Path | None = None, panel_dir: Path | None = None,
                 panel_customers: float | None = None) -> TrainingRun:
    """Train on the extract in `data_dir` (extraction date: `extracted_on`, else its manifest's, else derived);
    `extra_file`: columns from outside the histories the models read too (features.extra). `panel_dir`: train
    on a panel folder built on Spark instead (training.spark_panel; `panel_customers`: a share of its customers)."""
    if panel_dir is not None:
        return _run_on_panel(panel_dir, panel_customers, cfg, uri=uri, experiment=experiment, model_name=model_name,
                             ece_tolerance=ece_tolerance, progress=progress)
    t0 = time.perf_counter()
    tables = load_extract(data_dir, extracted_on=extracted_on, optional=("macro", "truth"))
    if tables.extraction is not None:
        progress(("warning: " if tables.extraction.derived else "") + tables.extraction.note)
    labels = supplied_labels(labels_file) if labels_file else None
    extra = extra_columns(extra_file) if extra_file else None
    if extra is not None and (outside := check_accounts(extra, tables.accounts["account_id"].to_numpy())):
        progress(f"warning: {outside:,} accounts of {extra_file} are not in the data: their rows are not used")
    t_load = time.perf_counter() - t0
    trials: list[dict] = []

    def on_trial(target: str, number: int, params: dict, loss: float, rounds: int) -> None:
        trials.append({"target": target, "number": number, "params": params, "valid_log_loss": loss,
                       "rounds": rounds})
        progress(f"    trial {number}: validation log loss {loss:.5f} after {rounds} rounds")

    progress(f"panel: building features and labels ({len(tables.accounts):,} accounts) ...")
    result = train(tables, cfg, labels=labels, progress=progress, on_trial=on_trial, extra=extra)
    if extra is not None:
        progress(joined_note(extra, result))
    t1 = time.perf_counter()
    report = write_training_pack(result, tables, reports_dir, n_boot=cfg.n_boot)
    t_report = time.perf_counter() - t1
    progress(f"report: {report} ({t_report:.1f} s)")
    extra = {"catalog": CATALOG_PAGE} if CATALOG_PAGE.exists() else {}
    extra["report_numbers"] = report.with_suffix(".json")
    t2 = time.perf_counter()
    progress(f"mlflow: logging the run and registering {model_name} at {uri} ...")
    with registry_notes_held_back():
        logged = log_training(result, model_name=model_name, experiment=experiment, uri=uri, report_path=report,
                              extra_artifacts=extra, params={"data": str(data_dir)}, config=cfg,
                              tolerance_ece=ece_tolerance)
        if trials:
            _log_trials(uri, logged.run_id, trials)
    t_tracking = time.perf_counter() - t2
    progress(f"mlflow: logged and registered in {t_tracking:.1f} s")
    seconds = {"load_s": t_load, **result.timings, "report_s": t_report, "tracking_s": t_tracking,
               "wall_s": time.perf_counter() - t0}
    return TrainingRun(result, logged, report, seconds, _local_bundle(uri, logged.run_id))


def _run_on_panel(panel_dir: Path, customers: float | None, cfg: TrainConfig, *, uri: str, experiment: str,
                  model_name: str, ece_tolerance: float, progress: Callable[[str], None]) -> TrainingRun:
    """Train on a panel folder: the fit, the registration, no validation pack (the pack reads the histories'
    segments, which the folder does not hold: `python -m validation report --model ... --data DIR` writes
    one for the registered model)."""
    from training.spark_panel import panel_info, read_panel

    t0 = time.perf_counter()
    info = panel_info(panel_dir)
    panel = read_panel(panel_dir, cfg, default_catalog(), customers)
    sample = f", customers sampled {customers:g}" if customers is not None and customers < 1 else ""
    progress(f"panel: {len(panel.frame):,} rows read from {panel_dir}{sample} (built from {info['data']})")
    t_load = time.perf_counter() - t0
    result = train(None, cfg, progress=progress, panel=panel, data_fingerprint=info["data_fingerprint"])
    progress("report: none (a panel folder holds no histories): python -m validation report --model MODEL "
             f"--data {info['data']} writes the validation pack")
    extra = {"catalog": CATALOG_PAGE} if CATALOG_PAGE.exists() else {}
    t2 = time.perf_counter()
    progress(f"mlflow: logging the run and registering {model_name} at {uri} ...")
    params = {"data": info["data"], "panel": str(panel_dir), "panel_customers": customers or 1.0}
    with registry_notes_held_back():
        logged = log_training(result, model_name=model_name, experiment=experiment, uri=uri, report_path=None,
                              extra_artifacts=extra, params=params, config=cfg, tolerance_ece=ece_tolerance)
    t_tracking = time.perf_counter() - t2
    progress(f"mlflow: logged and registered in {t_tracking:.1f} s")
    seconds = {"load_s": t_load, **result.timings, "tracking_s": t_tracking, "wall_s": time.perf_counter() - t0}
    return TrainingRun(result, logged, None, seconds, _local_bundle(uri, logged.run_id))


def extra_columns(path: Path) -> ExtraColumns:
    """The extra-columns file, checked; its names may be none the models read already (the catalog's, the
    latent-state filter's, the targets')."""
    return read_extra(path, taken_names(default_catalog(), taken_by_latent()))


def joined_note(extra: ExtraColumns, result: TrainResult) -> str:
    """One line: which extra columns the models read, and how many panel rows had no value for them."""
    read = result.bundle.extra_names
    counts = result.panel_counts
    lacking = counts.loc[counts["target"].astype(str).str.startswith("(extra columns:"), "usable"].sum()
    left = [n for n in extra.names if n not in read]
    return (f"extra columns: {', '.join(read) or 'none'} from {extra.source}" +
            (f" ({', '.join(left)} left out: no split in training)" if left else "") +
            f"; {int(lacking):,} of {len(result.panel.frame) if result.panel is not None else 0:,} panel rows had no "
            "value (no row of their account, or none dated by then): missing, kept")


def _local_bundle(uri: str, run_id: str) -> Path | None:
    """The run's `bundle/` artifact as a local directory (relative to here when below it), if it is one."""
    import os
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    import mlflow

    location = urlparse(mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).info.artifact_uri)
    if location.scheme not in ("", "file"):
        return None
    path = Path(url2pathname(location.path)) / "bundle"
    if not path.is_dir():
        return None
    relative = os.path.relpath(path)
    return Path(relative) if not relative.startswith("..") else path


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
