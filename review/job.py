"""The review job: back-test a model on data it has not seen and write its validation pack.

    python -m validation report --model models:/dynascore@champion --data DIR --out review.html

It reads the nightly job's score files (`--scores`) or scores the window's month ends itself through the
scoring job, joins each row with the outcome the data show afterwards, and writes the pack: a self-contained
HTML page and the same numbers as JSON beside it, also logged to the model's mlflow run when it has one. The
window defaults to the latest month ends whose outcomes are complete.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.catalog import default_catalog
from features.contract import find_table
from features.extract_manifest import stated_extraction
from features.targets import BY_NAME, LabelConfig
from models.bundle import Bundle, BundleError, load_bundle
from models.latent_state import LatentStateFilter, with_latent
from models.registry import TrackingError, connect, fetch_bundle, tracking_uri
from review.contents import sections
from review.evidence import (
    Evidence,
    ReviewError,
    complete_month_ends,
    read_reasons,
    read_scores,
    score_files,
)
from review.gather import CHUNK_ACCOUNTS, Shared, gather, sample_accounts, surveyed
from review.pack import Pack
from review.replay import SAMPLE_ACCOUNTS
from review.thresholds import THRESHOLDS, Thresholds
from scoring.chunks import Portfolio
from scoring.output import manifest_path

PARAMETERS = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "bagging_fraction",
              "lambda_l2", "max_depth")


@dataclass(frozen=True)
class ReviewRequest:
    model: str  # models:/NAME@ALIAS, models:/NAME/3 or a bundle directory
    data: Path
    out: Path  # the HTML page; the JSON is written beside it
    scores: Path | None = None  # the nightly job's score files; default: score the window's month ends here
    start: str | None = None  # the window's first and last as-of dates (month ends within them)
    end: str | None = None
    months: int = 12  # without start and end: the latest month ends whose outcomes are complete
    tracking_uri: str | None = None
    n_boot: int = 100
    seed: int = 0
    workers: int = 2  # processes reading the histories, a chunk of accounts each
    chunk_accounts: int = CHUNK_ACCOUNTS
    log: bool = True  # log the pack to the model's mlflow run, when it has one
    thresholds: Thresholds = THRESHOLDS


@dataclass
class Model:
    """The reviewed model: its bundle, version and where it came from."""

    bundle: Bundle
    version: str
    run_id: str | None
    uri: str


def run(request: ReviewRequest, progress: Callable[[str], None] = lambda _: None) -> tuple[Path, Path, Pack]:
    """Gather the evidence, build the pack, write it; (html, json, pack)."""
    progress(f"surveying {request.data}")
    book = surveyed(request.data, stated_extraction(request.data))
    model = resolve_model(request)
    window = review_window(book.first_day, book.extraction.day, request)
    paths = _score_files(request, window, progress)
    other = champion(request, model)
    progress(f"joining {len(paths)} month ends of predictions with their outcomes, chunk by chunk")
    ev = evidence(request, (model, other), book, paths, window)
    pack = build(ev, model, request, progress)
    pack.header["champion"] = (f"{other.version}: compared on the same rows (Benchmark)" if other is not None
                               else "this model" if model.run_id else "(none: a bundle directory)")
    progress("writing the page and its numbers")
    html, js = pack.write(request.out)
    if request.log and model.run_id:
        _log(model, request, html, js)
    return html, js, pack


def resolve_model(request: ReviewRequest) -> Model:
    """The bundle of --model (downloaded from the registry into a temporary folder, read whole, removed), its
    version and its training run."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dynascore-review-") as tmp:
        path, version = fetch_bundle(request.model, Path(tmp), request.tracking_uri)
        bundle = load_bundle(path, default_catalog())
    if bundle.extra_names:  # the replay rebuilds features from the histories alone
        raise ReviewError(f"{request.model} reads extra columns ({', '.join(bundle.extra_names)}) the review cannot "
                          "rebuild yet: review it on its training report and the nightly manifests' drift")
    run_id = None
    if request.model.startswith("models:/"):
        name, number = version.split("/")
        run_id = connect(tracking_uri(request.tracking_uri)).get_model_version(name, number).run_id
    return Model(bundle, version, run_id, request.model)


def champion(request: ReviewRequest, model: Model) -> Model | None:
    """The registry's champion of the reviewed model's name, when that is another version."""
    if model.run_id is None:
        return None
    name = model.version.split("/")[0]
    try:
        other = resolve_model(ReviewRequest(f"models:/{name}@champion", request.data, request.out,
                                            tracking_uri=request.tracking_uri))
    except (TrackingError, BundleError):
        return None
    return None if other.version == model.version else other


def review_window(first_day: pd.Timestamp, extraction: pd.Timestamp, request: ReviewRequest) -> list[pd.Timestamp]:
    if request.start or request.end:
        start = pd.Timestamp(request.start) if request.start else first_day
        end = pd.Timestamp(request.end) if request.end else extraction
        days = list(pd.date_range(start, end, freq="ME"))
    else:
        days = complete_month_ends(first_day, extraction, request.months)
    if not days:
        raise ReviewError(f"no month end in the review window ({request.start or 'start'} to {request.end or 'end'}) "
                          "whose outcomes the data can show: widen --from / --to, or pass newer data")
    return days


def _score_files(request: ReviewRequest, window: list[pd.Timestamp], progress) -> list[Path]:
    if request.scores is not None:
        found = {p.stem: p for p in score_files(request.scores, window[0], window[-1])}
        paths = [found[f"scores-{d.date()}"] for d in window if f"scores-{d.date()}" in found]
        if not paths:
            raise ReviewError(f"{request.scores} holds no score file for the window's month ends "
                              f"({window[0].date()} to {window[-1].date()}): run score.py --as-of for them, or omit "
                              "--scores to let the review score them")
        return paths
    from scoring.job import ScoreRequest
    from scoring.job import run as score

    folder = Path(request.out).with_name(Path(request.out).stem + "-scores")
    out = []
    for i, day in enumerate(window, 1):
        progress(f"scoring month end {day.date()} ({i} of {len(window)})")
        path = folder / f"scores-{day.date()}.parquet"
        score(ScoreRequest(data=request.data, out=path, model=request.model, as_of=str(day.date()),
                           tracking_uri=request.tracking_uri))
        out.append(path)
    return out


def evidence(request: ReviewRequest, models: tuple[Model, Model | None], book: Portfolio, paths: list[Path],
             window: list[pd.Timestamp]) -> Evidence:
    """The evidence from score files: their rows with outcomes (read chunk by chunk with the histories), the
    book's month-end snapshots, a replayed sample, the nights' drift histograms and the bundle's references."""
    model, other = models
    rows = read_scores(paths)
    versions = set(rows["model_version"].dropna().unique())
    if versions and versions != {model.version}:
        raise ReviewError(f"the score files were written by {', '.join(sorted(versions))}, the review is of "
                          f"{model.version}: pass the score files of the reviewed model, or omit --scores")
    targets = [t for t in model.bundle.targets if t in BY_NAME]
    rows = rows.rename(columns={BY_NAME[t].output: f"p_{t}" for t in targets})
    labels = LabelConfig(**model.bundle.info.get("label_config", {}))
    after = window[-1] + pd.offsets.MonthEnd(1)  # where the window's late accounts are a month on
    shared = Shared(book.extraction, book.first_day, labels, tuple(targets), (*window, after),
                    sample_accounts(rows, targets, SAMPLE_ACCOUNTS), model.bundle,
                    other.bundle if other is not None else None, find_table(request.data, "truth") is not None)
    got = gather(request.data, book, rows, shared, workers=request.workers, chunk_accounts=request.chunk_accounts)
    return Evidence(f"the nightly job's score files ({len(paths)} month ends)", got.rows, targets, labels,
                    got.exclusions, reference=model.bundle.reference, drift_counts=_drift_counts(paths),
                    development={t: m.metrics.get("test", {}) for t, m in model.bundle.models.items()},
                    features=got.features, portfolio=got.portfolio, feature_info=feature_info(model.bundle),
                    reasons=read_reasons(paths))


def _drift_counts(paths: list[Path]) -> dict:
    """Each run's histograms on the reference's bins, from its manifest: {as_of: {name: counts}}."""
    out = {}
    for path in paths:
        if not manifest_path(path).exists():  # a score file without its manifest: its drift is not shown
            continue
        manifest = json.loads(manifest_path(path).read_text())
        drift = manifest.get("drift", {})
        counts = {n: e["counts"] for n, e in drift.get("features", {}).items() if "counts" in e}
        counts["_ranges"] = {n: e for n, e in drift.get("features", {}).items() if "training_range" in e}
        if "counts" in drift.get("score", {}):
            counts["score"] = drift["score"]["counts"]
        if counts:
            out[pd.Timestamp(manifest["as_of"])] = counts
    return out


def feature_info(bundle: Bundle) -> pd.DataFrame:
    latent = LatentStateFilter.from_dict(bundle.latent) if bundle.latent else None
    described = {f.name: f for f in with_latent(default_catalog(), latent)}
    rows = []
    for name in bundle.feature_names:
        f = described.get(name)
        source = f"{f.family}" + (f", {f.window.text()}" if f and f.window else "") if f else ""
        rows.append({"feature": name, "source": source, "description": f.description if f else "",
                     "fingerprint": bundle.fingerprints.get(name, "")})
    return pd.DataFrame(rows)


def hyper_parameters(bundle: Bundle) -> dict:
    """The LightGBM parameters each target's model text records (what was fitted, not what was asked)."""
    out = {}
    for target, m in bundle.models.items():
        found = dict(re.findall(r"^\[(\w+): ([^\]]*)\]$", m.text, flags=re.MULTILINE))
        out[target] = {k: found[k] for k in PARAMETERS if k in found} | {"trees": m.best_iteration}
    return out


def build(ev: Evidence, model: Model, request: ReviewRequest, progress: Callable[[str], None] = lambda _: None) -> Pack:
    parts = sections(ev, model.bundle, request.thresholds, n_boot=request.n_boot, seed=request.seed,
                     progress=progress)
    days = ev.as_of
    header = {"model": model.version, "source": model.uri, "mlflow run": model.run_id or "(none: a bundle directory)",
              "training seed": model.bundle.info.get("seed", "n/a"),
              "data fingerprint at training": model.bundle.info.get("data_fingerprint", "n/a"),
              "review window": f"{days[0].date()} to {days[-1].date()} ({len(days)} month ends)",
              "rows reviewed": f"{len(ev.rows):,} ({ev.rows['account_id'].nunique():,} accounts)",
              "bootstrap": f"{request.n_boot} account-level resamples, seed {request.seed}",
              "hyper-parameters": "; ".join(f"{k}: " + ", ".join(f"{a}={b}" for a, b in v.items())
                                            for k, v in hyper_parameters(model.bundle).items())}
    return Pack(f"Validation pack: {model.version}", header, parts, ev)


def _log(model: Model, request: ReviewRequest, html: Path, js: Path) -> None:
    """The pack as artifacts of the model's training run (under review/), and its findings count as a metric."""
    client = connect(tracking_uri(request.tracking_uri))
    for path in (html, js):
        client.log_artifact(model.run_id, str(path), artifact_path="review")
    findings = len(json.loads(js.read_text())["findings"])
    client.log_metric(model.run_id, "review_findings", float(findings))
