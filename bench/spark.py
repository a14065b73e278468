"""The nightly scoring job on Spark against the local engine: the same portfolio, model and output, both timed.

Goal, at 1,000,000 accounts: the job on Spark (`scoring.spark_job.run_spark`, master local[2]) in at most 2.5
times the local engine's wall (`scoring.job.run`, 2 workers), both in this process on the same world and model
as `python -m bench score` (trained once on --train-accounts x --train-months, not timed), and the two outputs
equal, sorted by account, in every column (a figure, printed: speed and equality are never asserted here).
Spark runs twice: on the extract as it comes (its rows grouped by customer bucket through a shuffle), and on
the same extract laid out by customer bucket (features.spark_layout; written once beside the world, not
timed), which each task reads where it lies.
Where Spark's time goes, from Spark's own record of the run's stages (the status store every application
keeps; no listener, no REST call): the session's start (printed apart, not in the ratio), the shuffle (the
tables read, each row tagged with its bucket, packed and exchanged: the stages that write shuffle data), the
stage that scores the groups as it writes their rows, the kernel inside it (the job's own seconds by stage,
summed over tasks: the manifest's timings.stages_worker_s), and the rest (plan, whole-table checks, the input
fingerprint). Stage seconds are wall seconds of the stages' spans (overlapping spans counted once); task
seconds are summed over the tasks, so on 2 cores they may reach twice the wall. The local engine's one-time
numba compile is filled first on a small chunk (numba's on-disk cache, which Spark's Python workers read too)
and timed apart.

Examples:
  python -m bench spark                                            # the goal's size, 1,000,000 accounts
  python -m bench spark --accounts 5000 --train-accounts 20000     # a small run
  python -m bench spark --master local[4] --buckets 16             # another master, 16 customer buckets
  python -m bench spark --conf spark.sql.shuffle.partitions=26     # a Spark setting over the project's
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.cli import bench_parser
from bench.data import dataset
from bench.measure import Timer
from bench.score import model, model_options
from features.cli import mlflow_output, positive

GOAL_RATIO = 2.5


def _parser() -> argparse.ArgumentParser:
    ap = bench_parser("spark", __doc__, accounts=1_000_000, months=24, workers=2)
    model_options(ap)
    ap.add_argument("--chunk-size", type=positive(), default=125_000, metavar="N",
                    help="accounts per chunk of the local engine, and per customer bucket on Spark unless "
                         "--buckets says otherwise (default 125,000)")
    ap.add_argument("--buckets", type=positive(), metavar="N",
                    help="customer buckets on Spark (default: about --chunk-size accounts each)")
    ap.add_argument("--master", default="local[2]", metavar="URL",
                    help="Spark master (default local[2]: two cores, as the local engine's two workers)")
    ap.add_argument("--conf", type=_setting, action="append", default=[], metavar="KEY=VALUE",
                    help="a Spark setting over features.spark_session's (repeat for more; default none)")
    return ap


def run(argv: list[str]) -> dict:
    args = _parser().parse_args(argv)
    mlflow_output(verbose=False)  # the figures, not mlflow's INFO lines and download bars
    from features.spark_session import spark_session
    from scoring.job import ScoreRequest
    from scoring.job import run as run_local

    data = dataset(args.accounts, args.months, args.seed, history=args.history_months)
    bundle_dir = model(args.train_accounts, args.train_months, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        with Timer() as t_compile:
            _compile(data, bundle_dir)
        request = ScoreRequest(data, tmp / "local.parquet", model=str(bundle_dir), workers=args.workers,
                               chunk_size=args.chunk_size)
        with Timer() as t_local:
            local = run_local(request)
        print(f"local engine {t_local.seconds:.1f} s for {local['rows']['scored']:,} accounts; Spark next",
              file=sys.stderr)  # a long Spark run stopped before its end still leaves this figure
        with Timer() as t_session:
            spark = spark_session(args.master, app="dynascore-bench", conf=dict(args.conf))
        try:
            arms = {"shuffled": _arm(spark, data, bundle_dir, tmp / "shuffled.parquet", args)}
            laid = _laid_out(spark, data, arms["shuffled"]["manifest"]["run"]["buckets"])
            arms["laid_out"] = _arm(spark, laid, bundle_dir, tmp / "laid_out.parquet", args)
        finally:
            spark.stop()
        for name, arm in arms.items():
            arm["same"] = _compare(tmp / "local.parquet", tmp / f"{name}.parquet")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = arms["shuffled"]["manifest"]
    print(f"spark: {manifest['rows']['scored']:,} accounts as of {manifest['as_of']} ({args.accounts:,} x "
          f"{args.months} months), Spark {manifest['run']['master']} with "
          f"{_count(manifest['run']['buckets'], 'bucket')} against the local engine with "
          f"{_count(args.workers, 'worker')} and {_count(local['run']['chunks'], 'chunk')}; model {bundle_dir.name}"
          + (f"; settings {', '.join(f'{k}={v}' for k, v in args.conf)}" if args.conf else ""))
    print(f"  local engine {t_local.seconds:.1f} s (kernel {sum(local['timings']['stages_worker_s'].values()):.1f} "
          f"task-s); session start {t_session.seconds:.1f} s and one-time compile {t_compile.seconds:.1f} s (apart)")
    figures = {}
    for name, arm in arms.items():
        figures[name] = _report(name, arm, t_local.seconds)
    return {"bench": "spark", "accounts": args.accounts, "scored": manifest["rows"]["scored"],
            "master": manifest["run"]["master"], "buckets": manifest["run"]["buckets"], "workers": args.workers,
            "conf": dict(args.conf), "local_s": round(t_local.seconds, 2), "session_s": round(t_session.seconds, 2),
            "compile_s": round(t_compile.seconds, 2), **figures["shuffled"],
            **{f"laid_out_{k}": v for k, v in figures["laid_out"].items()},
            "goal_met": figures["shuffled"]["goal_met"], "laid_out_goal_met": figures["laid_out"]["goal_met"]}


WHAT = {"shuffled": "the extract as it comes, grouped by a shuffle",
        "laid_out": "the same extract laid out by customer bucket (python -m features bucket), read where it lies"}


def _arm(spark, data: Path, bundle_dir: Path, out: Path, args) -> dict:
    """One timed Spark run of the job on `data`, and Spark's own record of where its time went."""
    from scoring.job import ScoreRequest
    from scoring.spark_job import run_spark

    first_job = _next_job(spark)
    request = ScoreRequest(data, out, model=str(bundle_dir), chunk_size=args.chunk_size)
    with Timer() as t:
        manifest = run_spark(request, spark, buckets=args.buckets)
    return {"manifest": manifest, "seconds": t.seconds, "split": _stage_split(spark, first_job)}


def _laid_out(spark, data: Path, buckets: int) -> Path:
    """The world laid out by customer bucket, written once beside it (not timed) and reused."""
    from features.spark_layout import LAYOUT, layout_of, write_bucketed

    folder = data.parent / f"{data.name}-b{buckets}"
    if not (folder / LAYOUT).exists() or layout_of(folder) != buckets:
        print(f"laying {data.name} out in {buckets} customer buckets into {folder} (not timed)", file=sys.stderr)
        write_bucketed(spark, data, folder, buckets)
    return folder


def _report(name: str, arm: dict, local_s: float) -> dict:
    """The arm's lines, and its figures for the JSON line."""
    manifest, split, same, seconds = arm["manifest"], arm["split"], arm["same"], arm["seconds"]
    kernel = manifest["timings"]["stages_worker_s"]
    ratio = seconds / local_s
    print(f"  {name}, {WHAT[name]}: Spark {seconds:.1f} s, ratio {ratio:.2f} to the local engine "
          f"(goal <= {GOAL_RATIO}); outputs equal (sorted by account, every column): "
          f"{'yes' if same['equal'] else 'NO'}, {same['rows_spark']:,} rows"
          + (f"; columns that differ: {', '.join(same['differ'])}" if same["differ"] else ""))
    if split is None:
        print("    Spark's stages: not readable from this Spark's status store")
    else:
        print(f"    by stage: shuffle {split['shuffle_s']:.1f} s ({split['shuffle_gb']:.2f} GB written, "
              f"{split['shuffle_task_s']:.1f} task-s); groups scored and written {split['groups_s']:.1f} s "
              f"({split['groups_tasks']} tasks, {split['groups_task_s']:.1f} task-s, of which the kernel "
              f"{sum(kernel.values()):.1f}); the rest {seconds - split['shuffle_s'] - split['groups_s']:.1f} s "
              f"(plan, whole-table checks, fingerprint; {split['jobs']} jobs in all)")
    return {"spark_s": round(seconds, 2), "ratio": round(ratio, 3),
            **({k: (round(v, 3) if isinstance(v, float) else v) for k, v in split.items()} if split else {}),
            "kernel_task_s": round(sum(kernel.values()), 2), **{f"{k}_task_s": v for k, v in kernel.items()},
            "outputs_equal": same["equal"], "columns_differ": same["differ"],
            "goal_met": bool(ratio <= GOAL_RATIO and same["equal"])}


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. spark.sql.shuffle.partitions=26")
    return key.strip(), value.strip()


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _compile(data: Path, bundle_dir: Path) -> None:
    """One small chunk in this process: numba's on-disk cache is filled before either engine is timed."""
    from features.contract import load_tables
    from models.bundle import load_bundle
    from policy.config import load_policy
    from scoring.chunk import ChunkSpec, score_chunk
    from scoring.chunks import survey
    from scoring.models import Models

    portfolio = survey(data)
    as_of = int(np.datetime64(portfolio.extraction.day.date(), "D").astype(np.int64))
    small = int(portfolio.account_id[min(2_000, len(portfolio.account_id) - 1)])
    spec = ChunkSpec(as_of, as_of - 31, portfolio.first_day, portfolio.extraction,
                     Models.of(load_bundle(bundle_dir)), "bench", load_policy(), "adverse")
    score_chunk(load_tables(data, account_range=(int(portfolio.account_id[0]), small)), spec)


# ---------------------------------------------------------------------------------------------- Spark's record


def _status_store(spark):
    """The application's status store: what the Spark UI shows, kept whether or not the UI runs."""
    return spark.sparkContext._jsc.sc().statusStore()


def _next_job(spark) -> int:
    """The id the next job will get (jobs are numbered from 0 in order)."""
    try:
        jobs = _status_store(spark).jobsList(None)
        return max((jobs.apply(i).jobId() for i in range(jobs.size())), default=-1) + 1
    except Exception:  # an internal API: the split is left out rather than the benchmark failing
        return 0


def _stage_split(spark, first_job: int) -> dict | None:
    """Wall seconds of the stages of the jobs from `first_job` on, by kind: shuffle (they write shuffle data: the
    tables read, tagged, packed and exchanged so that each bucket's rows meet), groups (they write the output
    files: the groups unpacked, or read where they lie, scored and written); their spans are merged so that
    stages running side by side count once."""
    try:
        store = _status_store(spark)
        jobs = store.jobsList(None)
        stages = {}
        for i in range(jobs.size()):
            job = jobs.apply(i)
            if job.jobId() < first_job:
                continue
            ids = job.stageIds()
            for k in range(ids.size()):
                stage = store.lastStageAttempt(ids.apply(k))
                if stage.status().toString() == "COMPLETE":
                    stages[stage.stageId()] = _stage(stage)
    except Exception:  # an internal API: the split is left out rather than the benchmark failing
        return None
    if not stages:
        return None
    groups = [s for s in stages.values() if s["output"] > 0]  # the groups are scored as their rows are written
    start = min((s["span"][0] for s in groups), default=float("inf"))
    shuffle = [s for s in stages.values() if s["shuffle_write"] > 0 and s["span"][0] < start]
    return {"shuffle_s": _wall(shuffle), "shuffle_task_s": sum(s["task_s"] for s in shuffle),
            "shuffle_gb": sum(s["shuffle_write"] for s in shuffle) / 1e9,
            "groups_s": _wall(groups), "groups_task_s": sum(s["task_s"] for s in groups),
            "groups_tasks": sum(s["tasks"] for s in groups), "jobs": jobs.size() - first_job}


def _stage(stage) -> dict:
    def seconds(option):
        return option.get().getTime() / 1e3 if option.isDefined() else None

    return {"span": (seconds(stage.submissionTime()), seconds(stage.completionTime())),
            "tasks": stage.numTasks(), "task_s": stage.executorRunTime() / 1e3,
            "shuffle_read": stage.shuffleReadBytes(), "shuffle_write": stage.shuffleWriteBytes(),
            "output": stage.outputBytes()}


def _wall(stages: list[dict]) -> float:
    """Seconds covered by the stages' spans, overlaps counted once."""
    total, end = 0.0, float("-inf")
    for lo, hi in sorted(s["span"] for s in stages if None not in s["span"]):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


# ---------------------------------------------------------------------------------------------- the outputs


def _compare(local: Path, spark: Path) -> dict:
    """The two outputs sorted by account, column by column (Spark's folder read in the local file's types)."""
    a = pq.read_table(local)
    b = pq.read_table(spark)  # a folder of parts: the manifest and Spark's markers (_*) are not parts
    out = {"rows_local": a.num_rows, "rows_spark": b.num_rows, "differ": []}
    if a.num_rows != b.num_rows or set(a.column_names) != set(b.column_names):
        missing = set(a.column_names) ^ set(b.column_names)
        return {**out, "equal": False, "differ": sorted(missing) or ["(rows)"]}
    try:
        b = b.select(a.column_names).cast(a.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return {**out, "equal": False, "differ": ["(types)"]}
    a, b = (t.sort_by("account_id").to_pandas() for t in (a, b))
    out["differ"] = [c for c in a.columns if not a[c].equals(b[c])]
    return {**out, "equal": not out["differ"]}
