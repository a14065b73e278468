"""The nightly batch scoring job: features, three models, reasons and policy for every account, in chunks.

The parent process surveys the data (ids and date span only), plans chunks of whole customers, and hands
them to worker processes (both cores); each worker reads its accounts' rows, builds the point-in-time
features, predicts, decides and explains, and returns an Arrow table plus drift counts. The parent writes
the tables in account order to one Parquet file and a manifest, atomically. Chunks are independent and
ordered, so the output does not depend on the chunk size or the number of workers.
"""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from features import kernels
from features.builders import Prepared, as_of_days, build_features, to_days
from features.catalog import Catalog, default_catalog
from features.contract import ContractError, find_table, load_tables, part_files, read_table
from features.outcomes import BillOutcomes
from models.calibration import Calibrator
from models.latent_state import LatentStateFilter, add_latent_features, with_latent
from models.reasons import describe, top_adverse
from models.scale import ScoreScale
from models.treeshap import CompiledTrees, compile_booster, contributions, predict_probability
from policy.config import Policy, PolicyError, load_policy
from policy.decide import ACTIVE, CHARGED_OFF, NEW, decide
from scoring.chunks import Portfolio, plan_chunks, survey
from scoring.output import REASONS, SCHEMA_VERSION, AtomicParquet, clear_leftovers, schema_for
from scoring.pool import worker_pool
from scoring.report import run_report
from scoring.tally import Tally
from validation.metrics import bin_counts, drift_level, psi_from_counts

if TYPE_CHECKING:
    from models.bundle import Bundle

log = logging.getLogger("dynascore.scoring")
STAGES = ("read", "features", "predict", "policy", "reasons", "assemble")
REASON_MODES = ("adverse", "all", "none")
INPUT_TABLES = ("accounts", "bills", "payments", "limits", "macro")


class ScoreError(ValueError):
    """A scoring run that cannot go ahead; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class ScoreRequest:
    data: Path
    out: Path | None = None  # default: scores/scores-<as-of>.parquet
    model: str = "models:/dynascore@champion"
    as_of: str | None = None  # default: the data's extraction date
    previous: Path | None = None  # an earlier output; default: recompute the previous cycle's score
    policy: Path | None = None  # overrides of policy/default.toml
    tracking_uri: str | None = None
    chunk_size: int = 125_000
    workers: int = 2
    reasons: str = "adverse"

    def __post_init__(self) -> None:
        if self.reasons not in REASON_MODES:
            raise ScoreError(f"reasons must be one of {', '.join(REASON_MODES)}, got {self.reasons!r}")
        if self.chunk_size < 1 or self.workers < 1:
            raise ScoreError("chunk size and workers must be at least 1")
        if self.out is not None and Path(self.out).suffix != ".parquet":
            raise ScoreError(f"--out {self.out}: the output is a Parquet file; name it *.parquet")


@dataclass(frozen=True)
class Models:
    """What a worker needs of the bundle, prepared once in the parent: compiled trees and calibrators."""

    feature_names: list[str]
    compiled: dict[str, CompiledTrees]
    calibrators: dict[str, Calibrator]
    scale: ScoreScale
    reference: dict
    latent: LatentStateFilter | None = None  # computes the bundle's latent-state features from the histories

    @classmethod
    def of(cls, bundle: Bundle) -> Models:
        return cls(bundle.feature_names, {t: compile_booster(m.booster) for t, m in bundle.models.items()},
                   {t: m.calibrator for t, m in bundle.models.items()}, bundle.scale, bundle.reference,
                   LatentStateFilter.from_dict(bundle.latent) if bundle.latent else None)

    @property
    def catalog(self) -> Catalog:
        """The features the models read, described: the catalog's, then the latent-state filter's."""
        return with_latent(default_catalog(), self.latent)

    @property
    def targets(self) -> list[str]:
        return list(self.compiled)

    def probability(self, target: str, X: np.ndarray) -> np.ndarray:
        """Calibrated probability: what Bundle.predict gives, from the compiled trees."""
        return self.calibrators[target].transform(predict_probability(self.compiled[target], X))


@dataclass(frozen=True)
class ChunkTask:
    data: Path
    lo: int
    hi: int
    as_of: int  # day number
    previous_day: int | None  # recompute the previous score as of this day (None: from a file, or none)
    previous_ids: np.ndarray | None  # ... or take it from these (account, score) pairs
    previous_scores: np.ndarray | None
    first_day: pd.Timestamp
    extraction: pd.Timestamp
    models: Models
    model_version: str
    policy: Policy
    reasons: str


@dataclass
class ChunkResult:
    table: pa.Table
    drift: dict[str, np.ndarray]
    seconds: dict[str, float]
    accounts: int  # accounts in the chunk, open or not


# ---------------------------------------------------------------------------------------------- one chunk


def score_chunk(task: ChunkTask) -> ChunkResult:
    """Everything for the accounts lo <= account_id < hi: runs in a worker process (or in-process)."""
    try:
        return _score_chunk(task)
    except (ContractError, ValueError) as exc:  # a plain message: custom exceptions cross processes badly
        raise ScoreError(str(exc)) from None


def _score_chunk(task: ChunkTask) -> ChunkResult:
    seconds = dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] += now - clock
        clock = now

    models = task.models
    tables = load_tables(task.data, account_range=(task.lo, task.hi))
    lap("read")
    prep, now, before = _features(tables, task)
    lap("features")
    X = np.ascontiguousarray(now[models.feature_names].to_numpy(np.float64))
    prob = {t: models.probability(t, X) for t in models.targets}
    model_score = models.scale.score(prob["default"])[0]
    previous = _previous_scores(task, now["account_id"].to_numpy(np.int64), before)
    lap("predict")
    state = _state(prep, now, task.as_of, prob, model_score, previous)
    decision = decide(state, task.policy, score_lo=models.scale.lo, score_hi=models.scale.hi)
    lap("policy")
    codes, texts = _reasons(decision, models.compiled, X, models.feature_names, task.reasons, models.catalog)
    lap("reasons")
    table = _table(task, state, prob, decision, codes, texts)
    drift = {name: bin_counts(ref, now[name]) for name, ref in models.reference.get("features", {}).items()
             if name in now}
    if "score" in models.reference:
        drift["score"] = bin_counts(models.reference["score"], pd.Series(model_score))
    lap("assemble")
    return ChunkResult(table, drift, seconds, len(prep.account_id))


def _features(tables, task: ChunkTask) -> tuple[Prepared, pd.DataFrame, pd.DataFrame]:
    """Features as of T and (when recomputing) as of the previous cycle, in one pass over the histories.

    The chunk's own first and last dates are replaced by the whole portfolio's: an as-of date is judged
    against the data, not against the accounts that happen to share a chunk.
    """
    prep = Prepared(tables)
    prep.extraction, prep.first_day = task.extraction, int(to_days(np.array([task.first_day.to_datetime64()]))[0])
    days = [task.as_of] if task.previous_day is None else [task.previous_day, task.as_of]
    frame = build_features(prep, [np.datetime64(int(d), "D") for d in days], default_catalog())
    if task.models.latent is not None:
        frame = add_latent_features(frame, BillOutcomes(prep), task.models.latent)
    at = frame["as_of"].to_numpy().astype("datetime64[D]").astype(np.int64)
    return prep, frame[at == task.as_of].reset_index(drop=True), frame[at != task.as_of]


def _previous_scores(task: ChunkTask, ids: np.ndarray, before: pd.DataFrame) -> np.ndarray:
    """Last cycle's score per account (NaN where there is none): recomputed, or from the --previous file."""
    previous = np.full(len(ids), np.nan)
    if task.previous_day is not None and len(before):
        X = np.ascontiguousarray(before[task.models.feature_names].to_numpy(np.float64))
        scores = task.models.scale.score(task.models.probability("default", X))[0]
        known = before["account_id"].to_numpy(np.int64)
    elif task.previous_ids is not None and len(task.previous_ids):
        scores, known = task.previous_scores, task.previous_ids
    else:
        return previous
    pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    hit = known[pos] == ids
    previous[hit] = scores[pos[hit]]
    return previous


def _state(prep: Prepared, now: pd.DataFrame, as_of: int, prob: dict, model_score: np.ndarray,
           previous: np.ndarray) -> pd.DataFrame:
    """What the policy decides on: predictions and the few facts it reads (policy.decide.INPUTS)."""
    ids = now["account_id"].to_numpy(np.int64)
    charge_day = prep.charge_off_day[np.searchsorted(prep.account_id, ids)]
    charged = (charge_day != kernels.NONE) & (charge_day <= as_of)
    state = pd.DataFrame({
        "account_id": ids, "status": np.where(charged, CHARGED_OFF, np.where(now["bills_due"].to_numpy() == 0,
                                                                              NEW, ACTIVE)),
        "is_installment": now["is_installment"].to_numpy() == 1,
        "pd_default": prob["default"], "model_score": model_score, "previous_score": previous,
        "dpd_now": now["dpd_now"].to_numpy(), "days_since_late": now["days_since_late"].to_numpy(),
        "utilisation": now["util_n3"].to_numpy(), "balance_now": now["balance_now"].to_numpy(),
        "limit_now": now["limit_now"].to_numpy(),
    })
    for target, column in (("early_warning", "p_early_warning"), ("self_cure", "p_self_cure")):
        if target in prob:
            state[column] = prob[target]
    return state


def _table(task: ChunkTask, state: pd.DataFrame, prob: dict, decision: pd.DataFrame, codes: np.ndarray,
           texts: np.ndarray) -> pa.Table:
    """The chunk's rows in the output schema (columns of targets the bundle lacks left out)."""
    n = len(state)
    out = {
        "account_id": state["account_id"].to_numpy(), "as_of": np.full(n, task.as_of, dtype="datetime64[D]"),
        "status": state["status"].to_numpy(),
        "product": np.where(state["is_installment"], "installment", "revolving"),
        "pd_default": prob["default"], "model_score": state["model_score"].to_numpy(),
        "previous_score": state["previous_score"].to_numpy(), "p_early_warning": prob.get("early_warning"),
        "p_self_cure": prob.get("self_cure"), "dpd_now": state["dpd_now"].to_numpy(),
        "credit_limit": state["limit_now"].to_numpy(),
        **{c: decision[c].to_numpy() for c in ("score", "score_adjustment", "early_warning", "early_warning_action",
                                                "collection_treatment", "control_cell", "new_credit_limit",
                                                "limit_action", "adverse")},
        **{f"reason_{i + 1}": codes[:, i] for i in range(REASONS)},
        **{f"reason_text_{i + 1}": texts[:, i] for i in range(REASONS)},
        "model_version": np.full(n, task.model_version, dtype=object),
        "schema_version": np.full(n, SCHEMA_VERSION, dtype=np.int32),
    }
    schema = schema_for(task.models.targets)
    return pa.table({f.name: pa.array(out[f.name], type=f.type) for f in schema}, schema=schema)


def _reasons(decision: pd.DataFrame, compiled: dict, X: np.ndarray, names: list[str], mode: str, catalog: Catalog):
    """Reason columns: the fired rule first, then the explaining model's TreeSHAP reasons, up to REASONS.

    Only rows that need them are explained ('adverse': rows with an adverse decision; 'all': every row,
    by the default model unless the self-cure model explains an adverse collection decision).
    """
    n = len(decision)
    rule = decision["rule_code"].to_numpy(object)
    has_rule = rule != ""
    explain = decision["explain"].to_numpy(object).copy()
    if mode == "all":
        explain[explain == ""] = "default"
    elif mode == "none":
        explain[:] = ""
    model_idx = np.full((n, REASONS), -1, dtype=np.int64)
    for target, sign in (("default", 1.0), ("self_cure", -1.0)):  # adverse: raises PD, or lowers self-cure
        rows = np.flatnonzero(explain == target)
        if len(rows) and target in compiled:
            contrib = contributions(compiled[target], np.ascontiguousarray(X[rows]))[:, :-1]
            model_idx[rows] = top_adverse(sign * contrib, REASONS)[0]
    codes, texts = describe(model_idx, X, names, catalog)
    # rows with a rule: rule in slot 1, model reasons shifted right by one
    codes[has_rule, 1:] = codes[has_rule, :-1]
    texts[has_rule, 1:] = texts[has_rule, :-1]
    codes[has_rule, 0] = rule[has_rule]
    texts[has_rule, 0] = decision["rule_text"].to_numpy(object)[has_rule]
    return codes, texts


# ---------------------------------------------------------------------------------------------- the job


def run(request: ScoreRequest, progress: Callable[[int, int], None] | None = None,
        pool: ProcessPoolExecutor | None = None) -> dict:
    """Score every account as of the requested date; returns the manifest it wrote beside the output.

    `pool`: worker processes the caller started early (scoring.pool.worker_pool); by default the job starts
    `request.workers` of them itself.
    """
    if pool is None and request.workers > 1:
        with worker_pool(request.workers) as own:
            return run(request, progress, own)
    started = time.perf_counter()
    try:
        policy = load_policy(request.policy)
    except PolicyError as exc:
        raise ScoreError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="dynascore-score-") as tmp:
        from models.bundle import BundleError, load_bundle  # LightGBM: the parent's alone, workers do without
        from models.tracking import TrackingError, fetch_bundle

        try:
            bundle_dir, version = fetch_bundle(request.model, Path(tmp), request.tracking_uri)
            bundle = load_bundle(bundle_dir, expected_features=default_catalog().names)
        except (BundleError, TrackingError) as exc:
            raise ScoreError(str(exc)) from None
        if "default" not in bundle.targets:
            raise ScoreError(f"{request.model} has no model for the default target (it has "
                             f"{', '.join(bundle.targets)}): the score and limit decisions need it; "
                             "train with --targets default ...")
        try:
            portfolio = survey(request.data)
        except ContractError as exc:
            raise ScoreError(str(exc)) from None
        as_of = _as_of(request.as_of, portfolio)
        out = Path(request.out) if request.out is not None else Path("scores") / f"scores-{_date(as_of)}.parquet"
        previous_day, prev_ids, prev_scores, prev_info = _previous(request, policy, as_of, portfolio)
        size = min(request.chunk_size, -(-len(portfolio.account_id) // request.workers))  # every worker gets work
        chunks = plan_chunks(portfolio.account_id, portfolio.customer_id, max(size, 1), portfolio.boundaries)
        models = Models.of(bundle)
        tasks = [ChunkTask(Path(request.data), lo, hi, as_of, previous_day,
                           *_slice(prev_ids, prev_scores, lo, hi), portfolio.first_day, portfolio.extraction,
                           models, version, policy, request.reasons) for lo, hi in chunks]
        clear_leftovers(out)
        writer = AtomicParquet(out, schema_for(bundle.targets))
        try:
            with ThreadPoolExecutor(1) as hasher:  # the input fingerprint is hashed while the chunks run
                fingerprint = hasher.submit(_fingerprint, Path(request.data))
                stages = dict.fromkeys(STAGES, 0.0)
                drift: dict[str, np.ndarray] = {}
                tally = Tally([b.min_score for b in policy.limit.bands])
                accounts = 0
                for i, result in enumerate(_results(tasks, pool)):
                    writer.write(result.table)
                    accounts += result.accounts
                    for k, v in result.seconds.items():
                        stages[k] += v
                    for k, v in result.drift.items():
                        drift[k] = drift[k] + v if k in drift else v
                    tally.add(result.table)
                    if progress:
                        progress(i + 1, len(tasks))
                digest = fingerprint.result()
            if writer.rows == 0:
                raise ScoreError(f"no account of {request.data} is open on {_date(as_of)}: choose a later as-of date")
            t_done = time.perf_counter()
            manifest = {
                "schema_version": SCHEMA_VERSION, "as_of": _date(as_of), "previous": prev_info,
                "input": {"data": str(request.data), "fingerprint": digest, "extraction_date": str(
                    portfolio.extraction.date()), "accounts": accounts},
                "model": {"uri": request.model, "version": version, "catalog_version": bundle.catalog_version,
                          "targets": bundle.targets, "score_scale": bundle.scale.to_dict()},
                "policy": {"source": policy.source, "hash": policy.hash},
                "rows": {"scored": writer.rows, "not_open_yet": accounts - writer.rows,
                         **{k: dict(sorted(v.items())) for k, v in tally.categories.items()}, **tally.flags},
                "distributions": tally.summary(),
                "drift": drift_summary(bundle, drift),
                "run": {"chunks": len(tasks), "chunk_size": size, "workers": request.workers,
                        "reasons": request.reasons},
                "timings": {"stages_worker_s": {k: round(v, 3) for k, v in stages.items()},
                            "chunks_done_s": round(t_done - started, 3)},
            }
            manifest["timings"]["wall_s"] = round(time.perf_counter() - started, 3)
            _log_drift(manifest["drift"])
            report = run_report(manifest, bundle.reference.get("score"), drift.get("score"))
            return writer.commit(manifest, report)
        except BaseException:
            writer.abort()
            raise


def _results(tasks: list[ChunkTask], pool: ProcessPoolExecutor | None) -> Iterator[ChunkResult]:
    """Chunk results in chunk order (map keeps it), whichever worker finishes first."""
    if pool is None or len(tasks) == 1:
        yield from map(score_chunk, tasks)
    else:
        yield from pool.map(score_chunk, tasks)


def drift_summary(bundle: Bundle, counts: dict[str, np.ndarray]) -> dict:
    """PSI of the score and CSI of every feature against the bundle's training reference, with levels.

    Macro indicators take one value per as-of date, so against a reference spread over many months their
    CSI is large by construction: it is reported, with level 'one value per date', and never alerts.
    """
    macro = {f.name for f in default_catalog() if f.family == "macro"}
    out: dict = {"features": {}}
    for name, c in counts.items():
        ref = bundle.reference["score"] if name == "score" else bundle.reference["features"][name]
        value = psi_from_counts(ref, c)
        entry = {"psi": round(value, 5), "level": "one value per date" if name in macro else drift_level(value)}
        if name == "score":
            out["score"] = entry
        else:
            out["features"][name] = entry
    out["warning"] = sorted(n for n, e in out["features"].items() if e["level"] == "warning")
    out["alert"] = sorted(n for n, e in out["features"].items() if e["level"] == "alert")
    return out


def _log_drift(drift: dict) -> None:
    score = drift.get("score")
    if score and score["level"] != "stable":
        log.warning("score PSI %.3f against the training reference: %s", score["psi"], score["level"])
    for level in ("warning", "alert"):
        if drift[level]:
            worst = sorted(drift[level], key=lambda n: -drift["features"][n]["psi"])[:5]
            log.warning("feature CSI %s (above %s) for %d of %d features, highest: %s; all in the manifest", level,
                        "0.25" if level == "alert" else "0.1", len(drift[level]), len(drift["features"]),
                        ", ".join(f"{n} {drift['features'][n]['psi']:.2f}" for n in worst))


def _fingerprint(data: Path) -> str:
    from scoring.output import fingerprint

    files = []
    for name in INPUT_TABLES:
        path = find_table(data, name)
        if path is not None:
            files += part_files(path) if path.is_dir() else [path]
    return fingerprint(data, files)


def _as_of(text: str | None, portfolio: Portfolio) -> int:
    if pd.isna(portfolio.extraction):
        raise ScoreError("the data holds no dated rows: nothing to score")
    try:
        day = as_of_days(text if text is not None else portfolio.extraction.normalize())[0]
    except ValueError as exc:
        raise ScoreError(f"--as-of {text}: {exc}") from None
    first, last = (int(to_days(np.array([t.to_datetime64()]))[0]) for t in (portfolio.first_day,
                                                                             portfolio.extraction))
    if day > last:
        raise ScoreError(f"as-of date {_date(day)} is after the data's extraction date {_date(last)}: nothing after "
                         "the extraction is known; choose an earlier date or a newer extract")
    if day < first:
        raise ScoreError(f"as-of date {_date(day)} is before any data (first date {_date(first)}): "
                         "choose a later date")
    return int(day)


def _date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _previous(request: ScoreRequest, policy: Policy, as_of: int, portfolio: Portfolio):
    """(day to recompute, ids, scores, description): the previous cycle's scores, from a file or recomputed."""
    if request.previous is None:
        stamp = pd.Timestamp(np.datetime64(as_of, "D"))
        prev = stamp - pd.DateOffset(months=policy.score.cycle_months)
        if stamp.is_month_end:
            prev = prev + pd.offsets.MonthEnd(0)
        day = int(to_days(np.array([prev.to_datetime64()]))[0])
        first = int(to_days(np.array([portfolio.first_day.to_datetime64()]))[0])
        if day < first:
            return None, None, None, {"source": "none", "reason": f"{_date(day)} is before any data"}
        return day, None, None, {"source": "recomputed", "as_of": _date(day)}
    path = Path(request.previous)
    if not path.exists():
        raise ScoreError(f"--previous {path} does not exist: pass last cycle's output, or leave it out to "
                         "recompute the previous score")
    try:
        frame = read_table(path, "previous")
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    lacking = [c for c in ("account_id", "score") if c not in frame.columns]
    if lacking:
        raise ScoreError(f"--previous {path} lacks column(s) {', '.join(lacking)}: pass an output of score.py")
    ids = pd.to_numeric(frame["account_id"], errors="coerce").to_numpy(np.float64)
    bad = np.isnan(ids)
    if bad.any():
        raise ScoreError(f"{path}: column account_id has {bad.sum()} empty or non-numeric value(s) "
                         f"(rows {', '.join(map(str, np.flatnonzero(bad)[:3]))})")
    ids = ids.astype(np.int64)
    if "as_of" in frame:
        when = pd.to_datetime(frame["as_of"], errors="coerce")
        late = (when >= pd.Timestamp(np.datetime64(as_of, "D"))).to_numpy()
        if late.any():
            raise ScoreError(f"{path}: column as_of has {late.sum()} row(s) on or after the as-of date "
                             f"{_date(as_of)} (rows {', '.join(map(str, np.flatnonzero(late)[:3]))}): the previous "
                             "scores must come from an earlier cycle")
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        raise ScoreError(f"{path}: column account_id repeats {dup.sum()} account(s) (e.g. "
                         f"{', '.join(map(str, ids[dup][:3]))}): one previous score per account")
    unknown = ~np.isin(ids, portfolio.account_id)
    if unknown.any():
        raise ScoreError(f"{path}: {unknown.sum()} of {len(ids)} account(s) are not in {request.data} (e.g. "
                         f"account_id {', '.join(map(str, ids[unknown][:3]))}): the previous scores are for other "
                         "accounts; pass the previous output of this portfolio")
    order = np.argsort(ids)
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(np.float64)[order]
    return None, ids[order], scores, {"source": str(path), "rows": len(ids)}


def _slice(ids: np.ndarray | None, scores: np.ndarray | None, lo: int, hi: int):
    if ids is None:
        return None, None
    a, b = np.searchsorted(ids, [lo, hi])
    return ids[a:b], scores[a:b]
