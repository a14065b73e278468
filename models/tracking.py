"""Tracking: log a training run to mlflow, register its model, and decide champion or challenger.

The store is mlflow's embedded local one (`sqlite:///mlflow.db` in the working directory) unless a
`--tracking-uri` or `MLFLOW_TRACKING_URI` names another; an `mlflow server` URL works the same way and is
checked first, so a server that is down fails in seconds instead of hanging in mlflow's retries.

Every run logs the configuration, the data fingerprint, every target x slice metric, the benchmark
scorecard's and the oracle's, the report, the bundle (as the plain run artifact `bundle/`) and a pyfunc
model logged from code (`models/pyfunc_model.py`: nothing is pickled), registered under one name.

Promotion: the first version becomes `champion`. A later one is compared with the champion on the *new*
run's out-of-time rows for `default` -- both models score the same rows -- and takes `champion` only if its
AUC is higher and its expected calibration error (10 equal-frequency bins) is not worse by more than a
tolerance; otherwise it becomes `challenger`. A champion built on a different feature list cannot score
those rows, so the new version becomes `challenger` and a tag says why.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.bundle import OUTPUT, Bundle, BundleError, bundle_checksum, load_bundle

if TYPE_CHECKING:  # models.training pulls in the feature builders; tracking needs only the shapes
    from features.outcomes import BillOutcomes
    from models.training import TrainConfig, TrainResult

DEFAULT_URI = "sqlite:///mlflow.db"
CHAMPION, CHALLENGER = "champion", "challenger"
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
LABEL_COLUMNS = ("y", "default")  # the out-of-time label column oot_features may carry
N_EXAMPLE = 5  # rows in the logged input example


class TrackingError(RuntimeError):
    """The tracking store or registry cannot be used; the message says which and what to do."""


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    model_uri: str  # models:/<name>/<version>
    version: int
    alias: str  # champion | challenger
    decision: str  # one line: why this alias


@dataclass(frozen=True)
class Comparison:
    """The new model against the champion, both scored on the new run's out-of-time `default` rows."""

    rows: int
    auc_new: float
    auc_champion: float
    auc_diff_lo: float
    auc_diff_hi: float
    ece_new: float
    ece_champion: float
    tolerance_ece: float

    @property
    def auc_diff(self) -> float:
        return self.auc_new - self.auc_champion

    @property
    def promote(self) -> bool:
        return self.auc_new > self.auc_champion and self.ece_new <= self.ece_champion + self.tolerance_ece

    def describe(self) -> str:
        verdict = "higher" if self.auc_new > self.auc_champion else "not higher"
        ece = "within" if self.ece_new <= self.ece_champion + self.tolerance_ece else "beyond"
        return (f"AUC {self.auc_new:.4f} vs {self.auc_champion:.4f} ({verdict}; difference 95% CI "
                f"{self.auc_diff_lo:+.4f}..{self.auc_diff_hi:+.4f}), ECE {self.ece_new:.4f} vs "
                f"{self.ece_champion:.4f} ({ece} tolerance {self.tolerance_ece}) on {self.rows:,} out-of-time rows")


# --- where the store is -----------------------------------------------------------------------------------
def tracking_uri(cli_value: str | None = None) -> str:
    """The CLI value, else MLFLOW_TRACKING_URI, else the embedded store sqlite:///mlflow.db (working directory)."""
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def check_server(uri: str, timeout: float = 10.0) -> None:
    """For an http(s) URI, GET <uri>/health and raise TrackingError if it does not answer within `timeout`.

    The request runs in a daemon thread joined with the timeout, so a slow DNS lookup cannot stretch it.
    Other URIs (sqlite, postgresql, ...) need no server and pass.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    url = uri.rstrip("/") + "/health"
    outcome: dict = {}

    def probe() -> None:
        try:
            response = requests.get(url, timeout=(timeout, timeout))
            outcome["status"] = response.status_code
        except requests.RequestException as exc:
            outcome["error"] = _short(exc)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        why = f"no answer within {timeout:g} s"
    elif "error" in outcome:
        why = outcome["error"]
    elif outcome.get("status") != 200:
        why = f"GET /health returned HTTP {outcome.get('status')}: is it an mlflow server?"
    else:
        return
    raise TrackingError(f"the tracking server at {uri} does not answer ({why}); start it or use "
                        f"--tracking-uri {DEFAULT_URI}")


def _short(exc: BaseException) -> str:
    """The innermost reason of an error, on one line: '[Errno 111] Connection refused', 'Read timed out'."""
    text = " ".join(str(exc).split())
    match = re.search(r"\[Errno -?\d+\][^'\")]*|Read timed out|Connect(ion)? ?timed out", text)
    return (match.group(0) if match else text).strip()[:160]


def _connect(uri: str):
    import mlflow
    from mlflow import MlflowClient

    check_server(uri)
    if uri.startswith("file:") or ("://" not in uri and uri != "databricks"):
        raise TrackingError(f"{uri} is an mlflow file store, which current mlflow no longer accepts; use "
                            f"--tracking-uri {DEFAULT_URI} (or an mlflow server URL)")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


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


def _oot_rows(oot_features: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The labelled out-of-time rows: features, label y and the account of each row (bootstrap groups)."""
    label = next((c for c in LABEL_COLUMNS if c in oot_features.columns), None)
    if label is None or "account_id" not in oot_features.columns:
        raise TrackingError("oot_features needs account_id, a label column (y or default) and the feature "
                            f"columns; it has {', '.join(map(str, oot_features.columns[:8]))}...")
    rows = oot_features[oot_features[label].notna()]
    return rows, rows[label].to_numpy(np.float64), rows["account_id"].to_numpy()


def compare(bundle_new: Bundle, bundle_champion: Bundle, oot_features: pd.DataFrame,
            tolerance_ece: float = 0.005, n_boot: int = 200, seed: int = 0,
            champion_features: pd.DataFrame | None = None) -> Comparison:
    """Score the same out-of-time rows with both bundles; AUC, its paired account-level bootstrap CI, ECE.
    `champion_features`: the same rows as the champion reads them, when it computes some features its own way
    (its latent-state filter)."""
    from validation.metrics import auc, bootstrap_auc_diff_ci, ece

    rows, y, groups = _oot_rows(oot_features)
    p_new = bundle_new.predict(rows)["pd_default"].to_numpy()
    old_rows = rows if champion_features is None else _oot_rows(champion_features)[0]
    p_old = bundle_champion.predict(old_rows)["pd_default"].to_numpy()
    lo, hi = bootstrap_auc_diff_ci(y, p_new, p_old, groups, n_boot=n_boot, seed=seed)
    return Comparison(len(y), auc(y, p_new), auc(y, p_old), lo, hi, ece(y, p_new, 10), ece(y, p_old, 10),
                      tolerance_ece)


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
      Default: `result.targets["default"].predictions` when it carries the feature columns.
    config: the TrainConfig (defaults to `result.config` when TrainResult carries one).
    """
    import mlflow

    client = _connect(uri)
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
        alias, decision, comparison = _promote(client, uri, model_name, bundle, oot_features,
                                               tolerance_ece, config, Path(tmp), history)
        client.set_registered_model_alias(model_name, alias, model_version)
        tags = {"promotion.alias": alias, "promotion.decision": decision}
        mlflow.set_tags(tags)
        for k, v in tags.items():
            client.set_model_version_tag(model_name, str(model_version), k, v)
        if comparison is not None:
            mlflow.log_metrics({f"promotion/{k}": float(v) for k, v in dataclasses.asdict(comparison).items()}
                               | {"promotion/auc_diff": comparison.auc_diff})
    return LoggedRun(run_id, experiment_id, f"models:/{model_name}/{model_version}", model_version, alias, decision)


def _oot_from_result(result: TrainResult) -> pd.DataFrame | None:
    """The default target's out-of-time rows: their features (kept by training) and labels."""
    r = result.targets.get("default")
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


def _promote(client, uri: str, name: str, bundle: Bundle, oot_features: pd.DataFrame | None,
             tolerance_ece: float, config, tmp: Path,
             history: BillOutcomes | None = None) -> tuple[str, str, Comparison | None]:
    """(alias for the new version, one-line decision, the comparison when one was made)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return CHAMPION, "no champion yet: the first version becomes champion", None
    old = f"version {champion.version}"
    try:
        old_bundle = load_bundle(_bundle_dir_of_version(client, name, champion, tmp / "champion", uri))
    except (BundleError, TrackingError, MlflowException) as exc:
        return CHALLENGER, f"the champion ({old}) cannot be loaded to compare ({_short(exc)})", None
    # the catalog's features must agree; the latent-state filter's the champion computes itself (below)
    if old_bundle.catalog_feature_names != bundle.catalog_feature_names:
        only_old = sorted(set(old_bundle.catalog_feature_names) - set(bundle.catalog_feature_names))
        only_new = sorted(set(bundle.catalog_feature_names) - set(old_bundle.catalog_feature_names))
        return CHALLENGER, (f"feature list differs from the champion ({old}, catalog {old_bundle.catalog_version} "
                            f"vs {bundle.catalog_version}; champion only {only_old[:3]}, new only {only_new[:3]}"
                            f"{', or a different order' if not (only_old or only_new) else ''}): it cannot "
                            "score the new out-of-time rows; compare by hand"), None
    if "default" not in bundle.models or "default" not in old_bundle.models:
        return CHALLENGER, f"no default model in both the new version and the champion ({old}) to compare", None
    if oot_features is None or oot_features.empty:
        return CHALLENGER, f"no out-of-time rows were given to compare with the champion ({old})", None
    champion_features = None
    if old_bundle.latent and not old_bundle.same_latent(bundle):
        # another fit, or a new version without a filter: the champion reads the rows through its own filter
        # (a champion without one reads the catalog's columns and leaves the new filter's aside)
        if history is None:
            return CHALLENGER, (f"the champion ({old}) has a latent-state filter of its own and the histories to "
                                "compute its features are not at hand: compare by hand"), None
        from models.latent_state import LatentStateFilter, add_latent_features

        champion_features = add_latent_features(oot_features, history, LatentStateFilter.from_dict(old_bundle.latent))
    seed = getattr(config, "seed", 0)
    n_boot = getattr(config, "n_boot", 200)
    comparison = compare(bundle, old_bundle, oot_features, tolerance_ece, n_boot=n_boot, seed=seed,
                         champion_features=champion_features)
    if comparison.promote:
        return CHAMPION, f"beats the champion ({old}): {comparison.describe()}", comparison
    return CHALLENGER, f"does not beat the champion ({old}): {comparison.describe()}", comparison


# --- loading ----------------------------------------------------------------------------------------------
def _bundle_dir_of_version(client, name: str, mv, dst: Path, uri: str) -> Path:
    """The bundle of a registered version: its run's `bundle/` artifact, else the model's own copy."""
    import mlflow
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")  # a few small files: no bar
    dst.mkdir(parents=True, exist_ok=True)
    if mv.run_id:
        try:
            path = Path(mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path="bundle",
                                                            dst_path=str(dst / "run"), tracking_uri=uri))
            load_bundle(path)
            return path
        except (OSError, mlflow.exceptions.MlflowException, BundleError):
            pass  # fall back to the copy inside the logged model
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}",
                                               dst_path=str(dst / "model"), tracking_uri=uri, registry_uri=uri)
    return Path(path) / "artifacts" / "bundle"


def fetch_bundle(model_uri: str, dst: Path, uri: str | None = None) -> tuple[Path, str]:
    """A local bundle directory for `models:/NAME@alias`, `models:/NAME/3` or a directory, and its version.

    Registry versions are downloaded under `dst`; the version reads `NAME/3`. A directory is used in place;
    its version is `bundle:` plus the first 12 digits of its metadata checksum.
    """
    from mlflow.exceptions import MlflowException

    if not model_uri.startswith("models:/"):
        path = Path(model_uri)
        if not path.exists():
            raise BundleError(f"model {model_uri} not found: pass models:/NAME@champion (a registered model) or "
                              "the bundle directory train.py wrote")
        return path, f"bundle:{bundle_checksum(path)[:12]}"
    ref = model_uri[len("models:/"):]
    uri = tracking_uri(uri)
    client = _connect(uri)
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in ref:
            name, number = ref.rsplit("/", 1)
            mv = client.get_model_version(name, number)
        else:
            raise TrackingError(f"{model_uri}: name a version, models:/NAME/3, or an alias, models:/NAME@champion")
    except MlflowException as exc:
        raise TrackingError(f"{model_uri} is not in the registry at {uri} ({_short(exc)}); "
                            "list versions with `mlflow models` or the UI, or pass a bundle directory") from None
    return _bundle_dir_of_version(client, name, mv, Path(dst), uri), f"{name}/{mv.version}"


def load_model_bundle(model_uri: str, uri: str | None = None, expected_features: list[str] | None = None) -> Bundle:
    """`models:/NAME@alias`, `models:/NAME/3` or a local bundle directory -> a verified Bundle."""
    with tempfile.TemporaryDirectory(prefix="dynascore-bundle-") as tmp:
        path, _ = fetch_bundle(model_uri, Path(tmp), uri)
        bundle = load_bundle(path)
    if expected_features is not None and list(expected_features) != bundle.feature_names:
        raise BundleError(f"{model_uri}: the bundle's features differ from this code's catalog; score with the code "
                          "version it was trained with, or retrain")
    return bundle
