"""The nightly job on Spark: the local engine's plan -> map -> reduce, with Spark doing the map.

Plan (driver): the model, the policy and the dates, from the Parquet footers; no row of the data is read
here. Map (executors): the customers' hash buckets (features.spark_groups: shuffled there, or read where they
lie from an extract laid out by bucket), each rebuilt as the contract's Tables, checked by the contract and
scored by the same `scoring.chunk.score_chunk` the local engine calls, as Spark writes its rows into a hidden
folder beside the target. Each group adds its summary (drift histograms, tallies, input statistics, or its
problems) to an accumulator. Reduce (driver): the summaries are added up as the local engine adds up its
chunks, the whole-table checks run on the executors (features.spark_checks), and the folder is renamed into
place with the manifest inside, so a reader never sees a half-written folder. Sorted by account, the rows are
the local engine's, value for value.

Why this shape: a group is a set of whole customers, like a local chunk, so every feature and decision is
computed exactly as it is locally; nothing is implemented twice.
"""
from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.atomic_folder import hidden_beside, swap_in
from features.contract import ContractError, part_files, validate
from features.extract_manifest import check_control_totals, stated_extraction
from features.file_digest import fingerprint_of
from features.problem_tally import ProblemTally
from features.spark_checks import file_digests, on_executors, repeated_bill_ids
from features.spark_groups import (
    group_results,
    grouped,
    map_groups,
    shared_tables,
    table_sources,
)
from features.spark_tables import account_rows
from policy.config import PolicyError, load_policy
from scoring.chunk import ChunkOutput, ChunkSpec, score_chunk
from scoring.chunks import Portfolio, span
from scoring.drift import log_drift
from scoring.errors import ScoreError, day_text
from scoring.job import (
    INPUT_TABLES,
    Plan,
    ScoreRequest,
    Totals,
    _as_of,
    _bundle,
    _extra,
    _manifest,
    _refuse,
    _required_models,
)
from scoring.models import Models
from scoring.output import SCHEMA
from scoring.previous import previous_cycle
from scoring.report import run_report
from scoring.tally import Tally

MANIFEST_NAME, REPORT_NAME = "_manifest.json", "_report.html"


def run_spark(request: ScoreRequest, spark, *, buckets: int | None = None) -> dict:
    """Score every account as of the requested date on Spark; write the output folder and return its manifest.

    `buckets`: customer groups (default: about `request.chunk_size` accounts each, as the local engine's
    chunks, so a group fits an executor as a chunk fits a worker)."""
    started = time.perf_counter()
    if request.previous is not None:
        raise ScoreError("--previous is read by the local engine only: leave it out on Spark, and the previous "
                         "cycle's score is recomputed from the histories")
    try:
        policy = load_policy(request.policy)
    except PolicyError as exc:
        raise ScoreError(str(exc)) from None
    out = output_folder(request, 0) if request.out is not None else None
    if out is not None and out.exists() and not request.overwrite:
        raise ScoreError(f"--out {out} exists: the Spark engine replaces an output only with --overwrite")
    with tempfile.TemporaryDirectory(prefix="dynascore-spark-") as tmp:
        bundle, version = _bundle(request, Path(tmp))
        _required_models(request.model, bundle.targets, policy)
        extra = _extra(request, bundle)
        plan = _plan(request, policy, bundle, version, extra, spark, buckets)
        _refuse(lambda: check_control_totals(request.data, sums=False))
        totals, rows, digest, groups = _map_reduce(spark, request, plan, policy)
        try:
            manifest = _manifest(request, plan, bundle, policy, rows.count_written, totals, digest, started)
            manifest["run"] = {"engine": "spark", "buckets": groups.count, "laid_out": groups.folder is not None,
                               "master": spark.sparkContext.master, "reasons": request.reasons}
            log_drift(manifest["drift"])
            report = run_report(manifest, bundle.reference.get("score"), totals.drift.get("score"))
            return rows.commit(manifest, report)
        except BaseException:  # the written parts never stay behind a failed run
            rows.abort()
            raise


def output_folder(request: ScoreRequest, as_of: int) -> Path:
    """--out, or scores/scores-<as-of>.parquet: here a folder of Parquet parts (Spark writes one part per task),
    which Parquet readers read as one table."""
    return Path(request.out) if request.out is not None else Path("scores") / f"scores-{day_text(as_of)}.parquet"


def _plan(request: ScoreRequest, policy, bundle, version: str, extra, spark, buckets: int | None) -> Plan:
    try:
        first_day, extraction = span(request.data, stated_extraction(request.data, request.extracted_on))
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    portfolio = Portfolio(np.empty(0, np.int64), np.empty(0, np.int64), first_day, extraction)
    as_of = _as_of(request.as_of, portfolio)
    previous_day, _, _, previous_info = previous_cycle(request, policy, as_of, portfolio)
    if buckets is None:
        buckets = max(1, -(-account_rows(request.data) // request.chunk_size))
    spec = ChunkSpec(as_of, previous_day, first_day, extraction, Models.of(bundle), version, policy, request.reasons)
    out = output_folder(request, as_of)
    if request.out is None and out.exists() and not request.overwrite:
        raise ScoreError(f"{out} exists: the Spark engine replaces an output only with --overwrite")
    return Plan(as_of, out, portfolio, previous_info, buckets, spec, [], extra)


def _map_reduce(spark, request: ScoreRequest, plan: Plan, policy):
    """The groups scored by the executors as Spark writes their rows; their summaries added up here."""
    from pyspark.sql.pandas.types import from_arrow_schema

    data = Path(request.data)
    try:
        buckets = grouped(spark, data, plan.chunk_size)
    except ContractError as exc:
        raise ScoreError(str(exc)) from None
    results = group_results(spark)
    scorer = _group_scorer(plan.spec, plan.extra, shared_tables(data), table_sources(data), results)
    rows = _Output(map_groups(buckets, scorer, from_arrow_schema(SCHEMA)), plan.out)
    rows.write()  # the one pass over the data
    try:
        totals, problems = Totals(Tally(policy)), ProblemTally()
        for bucket in sorted(results.value):
            result: ChunkOutput = pickle.loads(results.value[bucket])
            if result.problems or problems:
                problems.add(result.problems)
            else:
                totals.add(result)
        _refuse_groups(spark, data, problems, totals)
        _refuse(lambda: check_control_totals(data, mapper=on_executors(spark)))  # the amounts' sums
        if rows.count_written == 0:
            raise ScoreError(f"no account of {data} is open on {day_text(plan.as_of)}: choose a later as-of date")
        digest = fingerprint_of(file_digests(spark, data, INPUT_TABLES))
    except BaseException:
        rows.abort()
        raise
    return totals, rows, digest, buckets


def _refuse_groups(spark, data: Path, problems: ProblemTally, totals: Totals) -> None:
    """Refuse the extract when any group's rows break the contract, counted over the whole tables, as the
    local engine refuses its chunks; a bill id repeated in two groups is counted over the whole column."""
    if problems or totals.inputs.bill_ids_may_repeat():
        repeated = repeated_bill_ids(spark, data)
        if repeated is not None:
            problems.replace(repeated)
    if problems:
        raise ScoreError(str(ContractError(problems.whole(Path(data)))))


def _group_scorer(spec: ChunkSpec, extra, shared: dict, sources: dict, results):
    """The function each group's tables are mapped with."""
    def score(tables: dict, bucket: int) -> Iterator[pa.RecordBatch]:
        yield from _score_group(tables, bucket, spec=spec, extra=extra, shared=shared, sources=sources,
                                results=results)

    return score


def _score_group(tables: dict, bucket: int, *, spec: ChunkSpec, extra, shared: dict, sources: dict,
                 results) -> Iterator[pa.RecordBatch]:
    """One bucket of customers, on an executor: its tables checked by the contract and scored by score_chunk;
    its rows out, its summary (drift histograms, tallies, input statistics, or its problems) to `results`.
    Numba runs one thread here: Spark gives each task a core."""
    import numba

    numba.set_num_threads(1)
    try:
        checked = validate({**tables, **shared}, sources=sources, extraction=spec.extraction)
    except ContractError as exc:
        result = ChunkOutput.refused(exc.problems, {})
    else:
        result = score_chunk(checked, spec, None, extra=extra)
        yield from result.table.to_batches()
        result.table = None
    results.add({bucket: pickle.dumps(result)})


class _Output:
    """The output rows written by Spark into a hidden folder beside the target, renamed into place once the
    manifest is in it: a reader sees the old folder or the whole new one."""

    def __init__(self, frame, out: Path) -> None:
        self.frame, self.out = frame, Path(out)
        self.tmp = hidden_beside(self.out)
        self.count_written = 0

    def write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.frame.write.parquet(str(self.tmp))
        except BaseException:  # a failed write leaves no hidden folder behind
            self.abort()
            raise
        self.count_written = sum(pq.ParquetFile(part).metadata.num_rows for part in part_files(self.tmp))  # footers

    def commit(self, manifest: dict, report: str) -> dict:
        """The manifest (naming the folder and its report) and the report into the folder, then the folder into
        place; files named _* are not data to Parquet readers."""
        manifest = {**manifest, "output": {"path": str(self.out), "rows": self.count_written,
                                           "format": "a folder of Parquet parts"},
                    "report": str(self.out / REPORT_NAME)}
        (self.tmp / REPORT_NAME).write_text(report)
        (self.tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        swap_in(self.tmp, self.out)
        return manifest

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
