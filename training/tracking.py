"""Tracking: log a training run to mlflow and register its model (promotion decides its alias).

The store is mlflow's embedded local one (`sqlite:///mlflow.db` in the working directory) unless a
`--tracking-uri` or `MLFLOW_TRACKING_URI` names another; an `mlflow server` URL works the same way and is
checked first, so a server that is down fails in seconds instead of hanging in mlflow's retries.

Every run logs the configuration, the data fingerprint, every target x slice metric, the benchmark
scorecard's and the oracle's, the report, the bundle (as the plain run artifact `bundle/`) and a pyfunc
model logged from code (`models/pyfunc_model.py`: nothing is pickled), registered under one name.

"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.bundle import OUTPUT, Bundle
from models.registry import TrackingError, connect
from training.promotion import promote
from training.snapshot import SnapshotPlan

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.trainer import TrainResult

MODEL_CODE = Path(__file__).resolve().parent.parent / "models" / "pyfunc_model.py"
N_EXAMPLE = 5  # rows in the logged input example


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_uri: str  # models:/<name>/<version>
    version: int
    alias: str  # champion | challenger
    decision: str  # one line: why this alias


def _artifact_root(uri: str) -> str | None:
    """For a sqlite store, artifacts go beside the database file (mlruns/), not in whatever the cwd is."""
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns").as_uri()


def _experiment_id(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    if exp.lifecycle_stage == "deleted":
        raise TrackingError(f"experiment {name!r} in {uri} was deleted: restore it (mlflow experiments restore "
                            f"--experiment-id {exp.experiment_id}) or choose another --experiment name")
    return exp.experiment_id


# --- what a run records -----------------------------------------------------------------------------------
def _flatten(obj, prefix: str = "") -> dict[str, object]:
    """Nested dicts/dataclasses to {'a/b/c': value}; lists and tuples become comma-joined text."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}" if prefix else str(k)))
        return out
    if isinstance(obj, list | tuple):
        obj = ",".join(str(v) for v in obj)
    elif isinstance(obj, np.generic):
        obj = obj.item()
    return {prefix: obj}


def _numbers(d: dict, prefix: str) -> dict[str, float]:
    """The numeric entries of a flat metric dict as `<prefix>/<name>` (None, text and booleans skipped)."""
    return {f"{prefix}/{k}": float(v) for k, v in d.items()
            if isinstance(v, int | float | np.number) and not isinstance(v, bool)}


def run_params(result: TrainResult, config: TrainConfig | None = None, params: dict | None = None) -> dict[str, object]:
    out = _flatten(params or {})
    if config is not None:
        out.update(_flatten(config, "config"))
    out.update({"data_fingerprint": result.fingerprint, "catalog_version": result.bundle.catalog_version,
                "n_features": len(result.bundle.feature_names)})
    for target, r in result.targets.items():
        out.update(_flatten({k: v for k, v in r.params.items()}, f"{target}/lgb"))
        out[f"{target}/best_iteration"] = r.best_iteration
        out[f"{target}/slices"] = r.plan.describe()
        out[f"{target}/embargo_months"] = r.plan.embargo
        out[f"{target}/split"] = "accounts" if isinstance(r.plan, SnapshotPlan) else "time"
        out.update(_flatten(r.rows, f"{target}/rows"))
    return out


def run_metrics(result: TrainResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for target, r in result.targets.items():
        for slice_name, m in r.metrics.items():
            out.update(_numbers(m, f"{target}/{slice_name}"))
        for slice_name, m in r.scorecard.items():
            out.update(_numbers(m, f"{target}/scorecard/{slice_name}"))
        if r.oracle:
            out.update(_numbers({k: v for k, v in r.oracle.items() if not k.startswith("_")}, f"{target}/oracle"))
        out[f"{target}/fit_seconds"] = float(r.fit_seconds)
    out.update(_numbers(result.timings, "timing"))
    return out


def _signature(bundle: Bundle):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = [OUTPUT[t] for t in bundle.targets] + (["score"] if "default" in bundle.models else [])
    return ModelSignature(inputs=Schema([ColSpec("double", n) for n in bundle.feature_names]),
                          outputs=Schema([ColSpec("double", n) for n in outputs]))


def _requirements() -> list[str]:
    """Pinned from the running environment: mlflow then needs no subprocess to infer them."""
    out = []
    for pkg in ("mlflow", "lightgbm", "numpy", "pandas", "scikit-learn", "scipy"):
        try:
            out.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            out.append(pkg)
    return out


# --- the run ----------------------------------------------------------------------------------------------
def log_training(result: TrainResult, *, model_name: str, experiment: str, uri: str, report_path: Path | None = None,
                 extra_artifacts: dict[str, Path] | None = None, params: dict | None = None,
                 oot_features: pd.DataFrame | None = None, config: TrainConfig | None = None,
                 tolerance_ece: float = 0.005, run_name: str | None = None) -> LoggedRun:
    """Log a TrainResult as one mlflow run, register its pyfunc model and give the version an alias.

    extra_artifacts: run artifact directory -> local file or directory (e.g. {"docs": Path("docs/features.md")}).
    params: further parameters to record as given (e.g. the CLI arguments), flattened with '/'.
    oot_features: the out-of-time rows for `default` -- account_id, as_of, the bundle's feature columns and
      the label (y or default); they re-score the champion for promotion and give the input example.
      Default: `result.targets["default"].test_features` with its labels. The other targets' out-of-time rows,
      which promotion compares too, always come from `result`.
    config: the TrainConfig (defaults to `result.config` when TrainResult carries one).
    """
    import mlflow

    client = connect(uri)
    experiment_id = _experiment_id(client, experiment, uri)
    config = config if config is not None else getattr(result, "config", None)
    bundle = result.bundle
    if oot_features is None:
        oot_features = _oot_from_result(result)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run, \
            tempfile.TemporaryDirectory(prefix="dynascore-log-") as tmp:
        run_id = run.info.run_id
        mlflow.log_params(run_params(result, config, params))
        mlflow.set_tags({"data_fingerprint": result.fingerprint, "catalog_version": bundle.catalog_version,
                         "targets": ",".join(bundle.targets), "model_name": model_name})
        mlflow.log_metrics(run_metrics(result))
        _log_files(result, Path(tmp), report_path, extra_artifacts or {})

        bundle_dir = bundle.save(Path(tmp) / "model" / "bundle")
        mlflow.log_artifacts(str(bundle_dir), "bundle")
        example = None
        if oot_features is not None and len(oot_features):
            example = oot_features[bundle.feature_names].head(N_EXAMPLE).astype(np.float64)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_CODE), artifacts={"bundle": str(bundle_dir)},
            code_paths=[str(MODEL_CODE.parent)], signature=_signature(bundle), input_example=example,
            pip_requirements=_requirements(), registered_model_name=model_name)
        model_version = int(info.registered_model_version)

        history = getattr(getattr(result, "panel", None), "history", None)
        oot = {t: _oot_from_result(result, t) for t in bundle.targets} | {"default": oot_features}
        cross = tuple(t for t, r in result.targets.items() if isinstance(r.plan, SnapshotPlan))
        verdict = promote(client, uri, model_name, bundle, oot, tolerance_ece=tolerance_ece, config=config,
                          tmp=Path(tmp), history=history, cross_validated=cross)
        alias, decision = verdict.alias, verdict.decision
        client.set_registered_model_alias(model_name, alias, model_version)
        tags = {"promotion.alias": alias, "promotion.decision": decision}
        mlflow.set_tags(tags)
        for k, v in tags.items():
            client.set_model_version_tag(model_name, str(model_version), k, v)
        if verdict.comparisons:
            mlflow.log_metrics(verdict.metrics())
    return LoggedRun(run_id, experiment_id, f"models:/{model_name}/{model_version}", model_version, alias, decision)


def _oot_from_result(result: TrainResult, target: str = "default") -> pd.DataFrame | None:
    """A target's out-of-time rows: their features (kept by training) and labels."""
    r = result.targets.get(target)
    if r is None or getattr(r, "test_features", None) is None:
        return None
    return r.test_features.assign(y=r.predictions["y"].to_numpy())


def _log_files(result: TrainResult, tmp: Path, report_path: Path | None, extra: dict[str, Path]) -> None:
    import mlflow

    tables = tmp / "tables"
    (tables / "calibration").mkdir(parents=True)
    for target, r in result.targets.items():
        if isinstance(r.calibration, pd.DataFrame):
            r.calibration.to_csv(tables / "calibration" / f"{target}_test.csv", index=False)
        if getattr(r, "by_month", None) is not None:
            r.by_month.to_csv(tables / "calibration" / f"{target}_by_month.csv", index=False)
    if isinstance(result.panel_counts, pd.DataFrame):
        result.panel_counts.to_csv(tables / "panel_counts.csv", index=False)
    mlflow.log_artifacts(str(tables), "tables")
    items = ({"report": report_path} if report_path is not None else {}) | dict(extra)
    for artifact_dir, path in items.items():
        path = Path(path)
        if not path.exists():
            raise TrackingError(f"{path} does not exist: cannot log it as the run artifact {artifact_dir}/")
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_dir)
        else:
            mlflow.log_artifact(str(path), artifact_dir)
