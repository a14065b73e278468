"""Where registered models live: the tracking store's address, and a verified bundle from the registry.

The store is mlflow's embedded local one (`sqlite:///mlflow.db` in the working directory) unless a
`--tracking-uri` or `MLFLOW_TRACKING_URI` names another; an `mlflow server` URL works the same way and is
checked first, so a server that is down fails in seconds instead of hanging in mlflow's retries. Training
writes to it (training/tracking.py); scoring and validation read bundles from it here.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

from features.catalog import Catalog
from models.bundle import Bundle, BundleError, bundle_checksum, load_bundle

DEFAULT_URI = "sqlite:///mlflow.db"
CHAMPION, CHALLENGER = "champion", "challenger"


class TrackingError(RuntimeError):
    """The tracking store or registry cannot be used; the message says which and what to do."""


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
            outcome["error"] = short_reason(exc)

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


def short_reason(exc: BaseException) -> str:
    """The innermost reason of an error, on one line: '[Errno 111] Connection refused', 'Read timed out'."""
    text = " ".join(str(exc).split())
    match = re.search(r"\[Errno -?\d+\][^'\")]*|Read timed out|Connect(ion)? ?timed out", text)
    return (match.group(0) if match else text).strip()[:160]


def connect(uri: str):
    import mlflow
    from mlflow import MlflowClient

    check_server(uri)
    if uri.startswith("file:") or ("://" not in uri and uri != "databricks"):
        raise TrackingError(f"{uri} is an mlflow file store, which current mlflow no longer accepts; use "
                            f"--tracking-uri {DEFAULT_URI} (or an mlflow server URL)")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# --- loading ----------------------------------------------------------------------------------------------
def bundle_dir_of_version(client, name: str, mv, dst: Path, uri: str) -> Path:
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
    if not model_uri.startswith("models:/"):  # a directory: no mlflow import (a second of the job's start)
        path = Path(model_uri)
        if not path.exists():
            raise BundleError(f"model {model_uri} not found: pass models:/NAME@champion (a registered model) or "
                              "the bundle directory train.py wrote")
        return path, f"bundle:{bundle_checksum(path)[:12]}"
    from mlflow.exceptions import MlflowException

    ref = model_uri[len("models:/"):]
    uri = tracking_uri(uri)
    client = connect(uri)
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
        raise TrackingError(f"{model_uri} is not in the registry at {uri} ({short_reason(exc)}); "
                            f"{listing_hint(uri)}, or pass a bundle directory") from None
    return bundle_dir_of_version(client, name, mv, Path(dst), uri), f"{name}/{mv.version}"


def listing_hint(uri: str) -> str:
    """How to see the registered versions and their aliases in the store at `uri`: a command that exists."""
    listing = (f"python -c \"from mlflow import MlflowClient; c = MlflowClient('{uri}'); "
               "[print(f'models:/{v.name}/{v.version}', *c.get_model_version(v.name, v.version).aliases) "
               "for v in c.search_model_versions()]\"")
    ui = f"open {uri}" if uri.startswith(("http://", "https://")) else f"mlflow ui --backend-store-uri {uri}"
    return f"list the registered versions with {listing} or in the UI ({ui})"


def load_model_bundle(model_uri: str, uri: str | None = None, catalog: Catalog | None = None) -> Bundle:
    """`models:/NAME@alias`, `models:/NAME/3` or a local bundle directory -> a verified Bundle (with `catalog`:
    also checked to read only features this code computes as at training)."""
    with tempfile.TemporaryDirectory(prefix="dynascore-bundle-") as tmp:
        path, _ = fetch_bundle(model_uri, Path(tmp), uri)
        return load_bundle(path, catalog)
