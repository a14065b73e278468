"""The nightly batch scoring job, local engine: plan -> map -> reduce.

Plan: the parent surveys the data (ids and date span only) and cuts chunks of whole customers. Map: each
worker process reads its chunk's rows and calls the pure `scoring.chunk.score_chunk`. Reduce: the parent
writes the chunks' tables in account order to one Parquet file, adds up drift, tallies and input
statistics, and writes the manifest and the run report, all atomically. Chunks are independent and
ordered, so the output does not depend on the chunk size or the number of workers.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from features.as_of import check_as_of
from features.builders import as_of_days, to_days
from features.catalog import default_catalog
from features.contract import ContractError, find_table, part_files
from features.extra import ExtraColumns, check_accounts, read_extra, taken_names
from features.extract_manifest import check_control_totals, stated_extraction
from features.problem_tally import ProblemTally
from models.latent_state import taken_by_latent
from policy.config import Policy, PolicyError, load_policy
from scoring.chunk import STAGES, ChunkOutput, ChunkSpec, InputStats
from scoring.chunks import Portfolio, plan_chunks, survey
from scoring.drift import drift_summary, log_drift
from scoring.edges import edge_problems
from scoring.errors import ScoreError, day_text
from scoring.models import Models
from scoring.output import INPUT_FILES, SCHEMA, SCHEMA_VERSION, TARGET_COLUMNS, AtomicParquet, Existing, claim, origin
from scoring.pool import worker_pool
from scoring.previous import day_over_day, previous_cycle, slice_of
from scoring.problems import repeated_bill_ids
from scoring.report import run_report
from scoring.tally import Tally, reason_titles
from scoring.worker import ChunkTask, read_and_score

__all__ = ["ScoreError", "ScoreRequest", "run"]
REASON_MODES = ("adverse", "all", "none")
INPUT_TABLES = ("accounts", "bills", "payments", "limits", "macro")


@dataclass(frozen=True)
class ScoreRequest:
    data: Path
    out: Path | None = None  # default: scores/scores-<as-of>.parquet
    model: str = "models:/dynascore@champion"
    as_of: str | None = None  # default: the data's extraction date
    previous: Path | None = None  # an earlier output; default: recompute the previous cycle's score
    extracted_on: str | None = None  # YYYY-MM-DD; default: the extract's manifest, else the latest event
    policy: Path | None = None  # overrides of policy/default.toml
    tracking_uri: str | None = None
    chunk_size: int = 125_000
    workers: int = 2
    reasons: str = "adverse"
    overwrite: bool = False  # replace an output written from other inputs (scoring.output.Existing)
    extra: Path | None = None  # the extra columns a model trained with --extra reads (features.extra)

    def __post_init__(self) -> None:
        if self.reasons not in REASON_MODES:
            raise ScoreError(f"reasons must be one of {', '.join(REASON_MODES)}, got {self.reasons!r}")
        if self.chunk_size < 1 or self.workers < 1:
            raise ScoreError("chunk size and workers must be at least 1")
        if self.out is not None and Path(self.out).suffix != ".parquet":
            raise ScoreError(f"--out {self.out}: the output is a Parquet file; name it *.parquet")


# ---------------------------------------------------------------------------------------------- map


def _results(tasks: list[ChunkTask], pool: ProcessPoolExecutor | None) -> Iterator[ChunkOutput]:
    """Chunk results in chunk order (map keeps it), whichever worker finishes first."""
    if pool is None or len(tasks) == 1:
        yield from map(read_and_score, tasks)
    else:
        yield from pool.map(read_and_score, tasks)


# ---------------------------------------------------------------------------------------------- reduce


@dataclass
class Totals:
    """What the reduce step adds up over chunks: worker seconds, drift histograms and extremes, tallies, input
    statistics."""

    tally: Tally
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    drift: dict[str, np.ndarray] = field(default_factory=dict)
    extremes: dict[str, np.ndarray] = field(default_factory=dict)  # [lowest, highest] of range-judged features
    inputs: InputStats = field(default_factory=InputStats)
    accounts: int = 0
    extra_missing: dict[str, int] = field(default_factory=dict)  # output rows without extra values, by why

    def add(self, result: ChunkOutput) -> None:
        self.accounts += result.accounts
        for k, v in result.seconds.items():
            self.stages[k] += v
        for k, v in result.drift.items():
            self.drift[k] = self.drift[k] + v if k in self.drift else v
        for k, (lo, hi) in result.extremes.items():
            was = self.extremes.get(k, np.full(2, np.nan))
            self.extremes[k] = np.array([np.fmin(was[0], lo), np.fmax(was[1], hi)])
        self.tally.merge(result.tally)
        self.inputs.merge(result.inputs)
        for k, v in result.extra_missing.items():
            self.extra_missing[k] = self.extra_missing.get(k, 0) + v


# ---------------------------------------------------------------------------------------------- the job


def run(request: ScoreRequest, progress: Callable[[int, int], None] | None = None,
        pool: ProcessPoolExecutor | None = None) -> dict:
    """Score every account as of the requested date; returns the manifest it wrote beside the output.

    `--out` is claimed first (scoring.output.claim): an output that cannot be written, that another run is
    writing, or that was written from another data folder fails before the model loads and the data is
    surveyed. The default output is named after the as-of date, so it is claimed once the data is surveyed.
    An output written from other inputs (scoring.output.Existing) is refused, unless request.overwrite, once
    the plan knows them and before any chunk is scored. `pool`: worker processes the caller started early
    (scoring.pool.worker_pool); by default the job starts `request.workers` of them itself.
    """
    with ExitStack() as held:  # closed in reverse: the workers stop before the output is released
        existing = _claim(Path(request.out), request, held) if request.out is not None else None
        if pool is None and request.workers > 1:
            pool = held.enter_context(worker_pool(request.workers, Path(request.data)))
        return _run(request, progress, pool, held, existing)


def _claim(out: Path, request: ScoreRequest, held: ExitStack) -> Existing | None:
    """Claim `out` for the run (in `held`) and return the output already there, unless the run may overwrite
    it; one written from another data folder is refused at once (the other inputs are known later)."""
    held.enter_context(claim(out))
    existing = None if request.overwrite else Existing.at(out)
    if existing is not None:
        existing.refuse_other(origin({"input": {"data": str(request.data)}}))
    return existing


def _run(request: ScoreRequest, progress: Callable[[int, int], None] | None, pool: ProcessPoolExecutor | None,
         held: ExitStack, existing: Existing | None) -> dict:
    """The job proper, with --out claimed; the default output is claimed in `held` once the plan names it."""
    started = time.perf_counter()
    try:
        policy = load_policy(request.policy)
    except PolicyError as exc:
        raise ScoreError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="dynascore-score-") as tmp:
        bundle, version = _bundle(request, Path(tmp))
        _required_models(request.model, bundle.targets, policy)
        extra = _extra(request, bundle)
        plan = _plan(request, policy, bundle, version, extra)
        _refuse(lambda: check_control_totals(request.data, sums=False))  # rows, from footers: a truncated transfer
        if request.out is None:
            existing = _claim(plan.out, request, held)
        digest = _refuse_other_inputs(existing, request, plan, policy)
        writer = AtomicParquet(plan.out, SCHEMA)
        try:
            with ThreadPoolExecutor(1) as hasher:  # the input fingerprint and the amounts' sums, while chunks run
                fingerprint = hasher.submit(_fingerprint, Path(request.data)) if digest is None else None
                control = hasher.submit(check_control_totals, request.data)
                totals = Totals(Tally(policy))
                problems = ProblemTally()
                for i, result in enumerate(_results(plan.tasks, pool)):
                    if result.problems or problems:  # once the extract is refused, nothing more is written
                        problems.add(result.problems)
                    else:
                        writer.write(result.table)
                        totals.add(result)
                    if progress:
                        progress(i + 1, len(plan.tasks))
                _refuse_chunks(request.data, problems, totals.inputs)
                _refuse(control.result)
                digest = digest or fingerprint.result()
            if writer.rows == 0:
                raise ScoreError(f"no account of {request.data} is open on {day_text(plan.as_of)}: choose a later "
                                 "as-of date")
            manifest = _manifest(request, plan, bundle, policy, writer.rows, totals, digest, started)
            log_drift(manifest["drift"])
            report = run_report(manifest, bundle.reference.get("score"), totals.drift.get("score"))
            return writer.commit(manifest, report)
        except BaseException:
            writer.abort()
            raise


def _refuse_other_inputs(existing: Existing | None, request: ScoreRequest, plan: Plan, policy: Policy) -> str | None:
    """Refuse, before any chunk is scored, to replace an output written from other inputs than this run's.

    Returns the input fingerprint when it had to be computed to tell (the output there was written from the
    same folder, date, model and policy: likely a rerun, unless the files changed); else None, and it is
    computed while the chunks run.
    """
    if existing is None:
        return None
    existing.refuse_other(origin(_inputs(request, plan, policy)))
    if not existing.knows(INPUT_FILES):
        return None
    digest = _fingerprint(Path(request.data))
    existing.refuse_other(origin(_inputs(request, plan, policy, digest)))
    return digest


def _refuse_chunks(data: Path, problems: ProblemTally, inputs: InputStats) -> None:
    """Refuse the extract when any chunk's rows break the contract, counting over the whole tables; and when
    a bill_id may repeat across chunks (their bill-id ranges overlap), count repeats in the whole column."""
    if problems or inputs.bill_ids_may_repeat():  # a refused chunk's bill ids are not known: look
        repeated = repeated_bill_ids(data)
        if repeated is not None:
            problems.replace(repeated)
    if problems:
        raise ScoreError(str(ContractError(problems.whole(data))))


def _refuse(check: Callable[[], list]) -> None:
    """Refuse the extract when its tables differ from its manifest's control totals (nothing is written)."""
    try:
        problems = check()
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    if problems:
        raise ScoreError(str(ContractError(problems)))


def _bundle(request: ScoreRequest, tmp: Path):
    """The verified bundle named by --model, and its version text."""
    from models.bundle import BundleError, load_bundle
    from models.registry import TrackingError, fetch_bundle

    try:
        bundle_dir, version = fetch_bundle(request.model, tmp, request.tracking_uri)
        bundle = load_bundle(bundle_dir, default_catalog())
    except (BundleError, TrackingError) as exc:
        raise ScoreError(str(exc)) from None
    if "default" not in bundle.targets:
        raise ScoreError(f"{request.model} has no model for the default target (it has "
                         f"{', '.join(bundle.targets)}): the score and limit decisions need it; "
                         "train with --targets default ...")
    return bundle, version


def _required_models(model: str, targets: list[str], policy: Policy) -> None:
    """Refuse a bundle without a model the policy is set to require; otherwise the rules that read a missing
    model's output do not fire and its columns are null."""
    need = {"early_warning": policy.early_warning.require_model, "self_cure": policy.collection.require_self_cure}
    keys = {"early_warning": "[early_warning] require_model", "self_cure": "[collection] require_self_cure"}
    missing = [t for t, required in need.items() if required and t not in targets]
    if missing:
        raise ScoreError(f"{model} has no model for {', '.join(missing)} (it has {', '.join(targets)}), which the "
                         f"policy requires ({', '.join(keys[t] for t in missing)} = true in {policy.source}): train "
                         "it (python train.py --targets default early_warning self_cure) or set the key to false")


def _extra(request: ScoreRequest, bundle) -> ExtraColumns | None:
    """The extra columns the bundle reads, from --extra's file; refused when the bundle reads some and the file
    is missing or lacks one, and when it reads none (the file's columns would be ignored)."""
    wanted, model = bundle.extra_names, request.model
    if not wanted and request.extra is None:
        return None
    if not wanted:
        raise ScoreError(f"{model} reads no extra columns (it was trained without --extra): the columns of "
                         f"{request.extra} would be ignored; drop --extra, or score with a model trained with it")
    keys = "account_id, as_of" if bundle.extra.get("dated") else "account_id"
    if request.extra is None:
        raise ScoreError(f"{model} reads extra columns {', '.join(wanted)} (from {bundle.extra.get('file')} at "
                         f"training): pass tonight's file with --extra FILE ({keys}, {', '.join(wanted)})")
    try:
        extra = read_extra(request.extra, taken_names(default_catalog(), taken_by_latent()))
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    lacking = [n for n in wanted if n not in extra.names]
    if lacking:
        raise ScoreError(f"{request.extra} lacks the extra column(s) {', '.join(lacking)} that {model} reads: pass "
                         f"a file with {keys}, {', '.join(wanted)}")
    return extra.select(wanted)


@dataclass(frozen=True)
class Plan:
    as_of: int
    out: Path
    portfolio: Portfolio
    previous_info: dict
    chunk_size: int
    spec: ChunkSpec
    tasks: list[ChunkTask]
    extra: ExtraColumns | None = None
    extra_outside: int = 0  # accounts of the extra file the data does not hold


def _plan(request: ScoreRequest, policy: Policy, bundle, version: str, extra: ExtraColumns | None = None) -> Plan:
    """The plan step: survey the data, fix the dates, cut chunks of whole customers."""
    try:
        portfolio = survey(request.data, stated_extraction(request.data, request.extracted_on))
        edges = edge_problems(request.data, portfolio.account_id)
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    if edges:
        raise ScoreError(str(ContractError(edges)))
    as_of = _as_of(request.as_of, portfolio)
    try:
        outside = 0 if extra is None else check_accounts(extra, portfolio.account_id)
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    out = Path(request.out) if request.out is not None else Path("scores") / f"scores-{day_text(as_of)}.parquet"
    previous_day, prev_ids, prev_scores, prev_info = previous_cycle(request, policy, as_of, portfolio)
    size = max(1, min(request.chunk_size, -(-len(portfolio.account_id) // request.workers)))  # work for all
    chunks = plan_chunks(portfolio.account_id, portfolio.customer_id, size, portfolio.boundaries)
    spec = ChunkSpec(as_of, previous_day, portfolio.first_day, portfolio.extraction, Models.of(bundle), version,
                     policy, request.reasons)
    tasks = []
    for lo, hi in chunks:
        ids, scores = slice_of(prev_ids, prev_scores, lo, hi)
        tasks.append(ChunkTask(Path(request.data), lo, hi, spec, None if ids is None else (ids, scores),
                               None if extra is None else extra.between(lo, hi)))
    return Plan(as_of, out, portfolio, prev_info, size, spec, tasks, extra, outside)


def _inputs(request: ScoreRequest, plan: Plan, policy: Policy, digest: str | None = None) -> dict:
    """The manifest's entries that say what the output is written from (scoring.output.ORIGIN); the data
    folder as an absolute path, so that a run from another working directory names the same folder."""
    given = {"data": str(Path(request.data).resolve()), "fingerprint": digest}
    if plan.extra is not None:
        given["extra"] = {"file": str(Path(request.extra).resolve()), "fingerprint": plan.extra.fingerprint}
    return {"as_of": day_text(plan.as_of), "input": given, "model": {"version": plan.spec.model_version},
            "policy": {"hash": policy.hash}}


def _manifest(request: ScoreRequest, plan: Plan, bundle, policy: Policy, rows: int, totals: Totals, digest: str,
              started: float) -> dict:
    """The run's manifest: inputs, model, policy, counts, the night's figures, drift and timings."""
    tally, inputs = totals.tally, _inputs(request, plan, policy, digest)
    manifest = {
        "schema_version": SCHEMA_VERSION, "as_of": inputs["as_of"], "previous": plan.previous_info,
        "input": {**inputs["input"], "extraction": plan.portfolio.extraction.to_dict(), "accounts": totals.accounts,
                  "tables": totals.inputs.summary(), **_extra_summary(inputs["input"], plan, totals)},
        "model": {"uri": request.model, **inputs["model"], "catalog_version": bundle.catalog_version,
                  "targets": bundle.targets,
                  "null_columns": [c for t, cols in TARGET_COLUMNS.items() if t not in bundle.targets for c in cols],
                  "score_scale": bundle.scale.to_dict()},
        "policy": {"source": policy.source, **inputs["policy"]},
        "rows": {"scored": rows, "not_open_yet": totals.accounts - rows,
                 **{k: dict(sorted(v.items())) for k, v in tally.categories.items()}, **tally.flags},
        "distributions": tally.summary(),
        "limits": tally.limit_summary(),
        "guardrails": tally.guardrail_summary(),
        "reasons": tally.reason_summary(reason_titles(bundle.feature_names, plan.spec.models.catalog)),
        "drift": drift_summary(bundle.reference, totals.drift, totals.extremes),
        "run": {"chunks": len(plan.tasks), "chunk_size": plan.chunk_size, "workers": request.workers,
                "reasons": request.reasons},
        "timings": {"stages_worker_s": {k: round(v, 3) for k, v in totals.stages.items()},
                    "chunks_done_s": round(time.perf_counter() - started, 3)},
    }
    manifest["change"] = day_over_day(request.previous, plan.out, manifest)
    manifest["timings"]["wall_s"] = round(time.perf_counter() - started, 3)
    return manifest


def _extra_summary(given: dict, plan: Plan, totals: Totals) -> dict:
    """The manifest's account of the extra columns: the file, the columns read, the output rows left without
    a value (no row of the account in the file, or none dated by the as-of day) and the file's accounts the data
    does not hold."""
    extra = plan.extra
    if extra is None:
        return {}
    return {"extra": {**given["extra"], "columns": list(extra.names), "dated": extra.dated,
                      "rows": len(extra.account_id), "rows_missing": dict(totals.extra_missing),
                      "accounts_not_in_data": plan.extra_outside}}


def _fingerprint(data: Path) -> str:
    from scoring.output import fingerprint

    files = []
    for name in INPUT_TABLES:
        path = find_table(data, name)
        if path is not None:
            files += part_files(path) if path.is_dir() else [path]
    return fingerprint(data, files)


def _as_of(text: str | None, portfolio: Portfolio) -> int:
    if portfolio.extraction is None:
        raise ScoreError("the data holds no dated event (no opening, statement, payment or limit): nothing to "
                         "score")
    try:
        day = int(as_of_days(text if text is not None else portfolio.extraction.day)[0])
        first, last = (int(to_days(np.array([t.to_datetime64()]))[0]) for t in (portfolio.first_day,
                                                                                 portfolio.extraction.day))
        check_as_of([day], first, last)
    except ValueError as exc:
        raise ScoreError(f"--as-of {text}: {exc}" if text is not None else str(exc)) from None
    return day
