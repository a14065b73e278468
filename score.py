"""python score.py: the nightly batch job -- score every account, then decide and explain.

For every account open at the as-of date: the three model probabilities, the score and its change since
the previous cycle, a credit-limit action under the policy's guardrails, an early warning, a collection
treatment for accounts late now (with a stable control cell), and up to four reasons for every adverse
decision. Writes one Parquet file (--out) and beside it, all atomically (a failed run leaves nothing at --out):
  <name>.manifest.json  data folder, input fingerprint, model version, policy hash, rows by action, timings,
                        drift, and the night's figures below
  <name>.report.html    the run report for whoever checks the night: net limit change and expected loss
                        before and after, guardrails that held raises back, reason codes of the adverse
                        decisions, action counts against the last run, limit actions by score band, collection
                        treatments by days past due, score adjustments, drift
--out is checked and locked before the model loads, so an unwritable output, or one another run is writing,
fails at once. An output written from other inputs (data folder, input files, as-of date, model version or
policy) is kept and the run refused, unless --overwrite is given.

Examples:
  python score.py                                   # demo data, the registry's champion, latest date
  python score.py --model models:/dynascore@champion --data data/synthetic/demo --as-of 2025-12-31 \\
                  --out scores/2025-12-31.parquet --previous scores/2025-11-30.parquet
  python score.py --model path/to/bundle --config my_policy.toml --reasons all
  python score.py --model models:/dynascore@champion --extra bureau.csv   # a model trained with --extra
The policy's thresholds and steps are in policy/default.toml; --config overrides any of them.
A model trained with --extra needs the same columns tonight (account_id, as_of if it had one, then the columns,
as in train.py --help): each account reads its latest row dated on or before the as-of date; an account with no
row reads missing values, and the manifest counts them. Without the file, or without one of its columns, the run
is refused and nothing is written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, existing_file, mlflow_output, positive

DEMO = Path("data/synthetic/demo")
REGISTRY = "models:/"
ABOUT, _, EXAMPLES = __doc__.rstrip().partition("\n\n")


def _model(text: str) -> str:
    """--model: a registry URI (models:/NAME@ALIAS or models:/NAME/VERSION) or a bundle directory that exists."""
    if text.startswith(REGISTRY):
        if not any(sep in text[len(REGISTRY):].strip("/@") for sep in "@/"):
            raise argparse.ArgumentTypeError(f"{text} names no version: models:/NAME/3 or models:/NAME@champion")
        return text
    if not Path(text).is_dir():
        why = "is a file, not a bundle directory" if Path(text).exists() else "not found"
        raise argparse.ArgumentTypeError(f"model {text} {why}: pass models:/NAME@champion (a registered model) or "
                                         "the bundle directory train.py wrote")
    return text


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python score.py", description=ABOUT, epilog=f"{EXAMPLES}\n\n{EXIT_CODES}")
    ap.add_argument("--model", type=_model, default="models:/dynascore@champion",
                    help="models:/NAME@ALIAS, models:/NAME/VERSION or a bundle directory "
                         "(default models:/dynascore@champion, what python train.py registers)")
    ap.add_argument("--data", type=data_directory, default=str(DEMO), metavar="DIR",
                    help=f"data directory in the contract (default {DEMO})")
    ap.add_argument("--as-of", type=day, metavar="YYYY-MM-DD", help="score as of the end of this day (default: "
                    "the data's extraction date)")
    ap.add_argument("--extracted-on", type=day, metavar="YYYY-MM-DD", help="the day the extract was taken: events "
                    "after it are refused (default: extraction_date in the extract's _manifest.json, else the latest "
                    "event date, never after today, with a warning)")
    ap.add_argument("--out", type=Path, metavar="FILE", help="output Parquet file (default "
                    "scores/scores-<as-of>.parquet); beside it go <name>.manifest.json and the run report "
                    "<name>.report.html")
    ap.add_argument("--previous", type=existing_file, metavar="FILE", help="last cycle's output, for score "
                    "adjustments (default: recompute the score as of the previous cycle)")
    ap.add_argument("--extra", type=existing_file, metavar="FILE",
                    help="the columns from outside the histories the model was trained with (train.py --extra): "
                         "CSV/Parquet with account_id, optional as_of, then the columns; required by such a model, "
                         "refused by any other")
    ap.add_argument("--overwrite", action="store_true", help="replace an output written from other inputs (another "
                    "data folder or input files, as-of date, model version or policy); without it such a run is "
                    "refused and the output kept")
    ap.add_argument("--config", type=existing_file, metavar="FILE", help="policy TOML overriding "
                    "policy/default.toml")
    ap.add_argument("--reasons", choices=("adverse", "all", "none"), default="adverse",
                    help="which accounts get model reasons: those with an adverse decision (default), all "
                         "(slower), or none (rules only)")
    ap.add_argument("--tracking-uri", metavar="URI", help="mlflow tracking URI for models:/ (default: "
                    "$MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ap.add_argument("--chunk-size", type=positive(), default=125_000, metavar="N",
                    help="accounts per chunk: bounds memory, about 1.5 GB per worker at the default 125000 "
                         "(results do not depend on it)")
    ap.add_argument("--workers", type=positive(), default=2, metavar="N", help="worker processes (default 2)")
    ap.add_argument("--engine", choices=("local", "spark"), default="local",
                    help="local: worker processes on this machine (default); spark: the same job on Spark (the "
                         "[spark] extra), grouped by customer; --out is then a folder of Parquet parts with its "
                         "_manifest.json and _report.html inside, and its rows equal the local engine's")
    ap.add_argument("--spark-master", metavar="URL", help="Spark master for --engine spark, e.g. local[2] or "
                    "yarn (default: what spark-submit gives, else local[*])")
    ap.add_argument("--buckets", type=positive(), metavar="N", help="customer groups for --engine spark (default: "
                    "about --chunk-size accounts each, so a group fits an executor as a chunk fits a worker); an "
                    "extract laid out by python -m features bucket keeps its own, read without a shuffle")
    ap.add_argument("--verbose", action="store_true",
                    help="also mlflow's own messages when reading models:/ (its INFO log lines, download bars)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # arguments and paths first: a mistake stops here, before any worker starts
    t0 = time.perf_counter()
    mlflow_output(args.verbose)
    if args.engine == "spark":
        return _score_spark(args, t0)
    from scoring.pool import worker_pool

    with worker_pool(args.workers, args.data) as pool:  # first: the workers import and warm while this process plans
        return _score(args, pool, t0)


def _score(args: argparse.Namespace, pool, t0: float) -> int:
    from scoring.job import ScoreError, run

    try:
        request = _request(args)
        from tqdm import tqdm

        with tqdm(total=None, unit="chunk", desc="scoring", disable=None) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            manifest = run(request, progress, pool)
    except ScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _summary(manifest, time.perf_counter() - t0)
    return 0


def _request(args: argparse.Namespace):
    from scoring.job import ScoreRequest

    return ScoreRequest(args.data, args.out, model=args.model, as_of=args.as_of, previous=args.previous,
                        policy=args.config, extracted_on=args.extracted_on, tracking_uri=args.tracking_uri,
                        chunk_size=args.chunk_size, workers=args.workers, reasons=args.reasons,
                        overwrite=args.overwrite, extra=args.extra)


def _score_spark(args: argparse.Namespace, t0: float) -> int:
    """The job on Spark (scoring/spark_job.py): the session, then the same request as the local engine's."""
    from scoring.job import ScoreError

    try:
        from features.spark_session import spark_session
        from scoring.spark_job import run_spark

        spark = spark_session(args.spark_master, app="dynascore-score")
    except ImportError:
        print("error: --engine spark needs pyspark: pip install -c constraints.txt -e '.[spark]'", file=sys.stderr)
        return 1
    try:
        manifest = run_spark(_request(args), spark, buckets=args.buckets)
    except ScoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _summary(manifest, time.perf_counter() - t0)
    return 0


def _summary(m: dict, seconds: float) -> None:
    import pandas as pd

    from features.extraction import DERIVED, Extraction

    rows = m["rows"]
    extraction = m["input"]["extraction"]
    if extraction["source"] == DERIVED:
        print(f"warning: {Extraction(pd.Timestamp(extraction['date']), DERIVED).note}", file=sys.stderr)
    print(f"scored {rows['scored']:,} accounts as of {m['as_of']} in {seconds:.1f} s with {m['model']['version']}"
          f" (previous score: {m['previous']['source']}; extracted on {extraction['date']}, {extraction['source']})")
    for key in ("limit_action", "collection_treatment", "status"):
        print(f"  {key:<21} " + "  ".join(f"{k} {v:,}" for k, v in rows[key].items()))
    print(f"  early warnings {rows.get('early_warning', 0):,}  adverse decisions {rows.get('adverse', 0):,}  "
          f"control cell {rows.get('control_cell', 0):,}")
    _night(m)
    if "extra" in m["input"]:
        e = m["input"]["extra"]
        lacking = e["rows_missing"]
        print(f"  extra columns {', '.join(e['columns'])}: missing for {lacking.get('not_in_file', 0):,} accounts "
              "not in the file" + (f", {lacking.get('not_known_yet', 0):,} with no value dated yet" if e["dated"]
                                   else ""))
        if e.get("accounts_not_in_data"):
            print(f"  warning: {e['accounts_not_in_data']:,} accounts of the extra file are not in the data")
    d = m["drift"]
    if "score" in d:
        from scoring.drift import worst

        alerts = worst(d, "alert", 3)
        print(f"  drift: score PSI {d['score']['psi']:.3f} ({d['score']['level']}); features warning "
              f"{len(d['warning'])}, alert {len(d['alert'])}" + (f" (worst {', '.join(alerts)})" if alerts else ""))
    print(f"wrote {m['output']['path']}, its manifest and the run report {m.get('report', '')}")


def _night(m: dict) -> None:
    """The limit actions' net change and expected loss, and the counts' change since the last run."""
    lim, el = m["limits"], m["limits"]["expected_loss"]
    print(f"  net limit change {lim['net_change']:+,.0f} (raises {lim['increases']['change']:+,.0f}, cuts "
          f"{lim['decreases']['change']:+,.0f}); expected loss {el['before']:,.0f} -> {el['after']:,.0f} "
          f"({el['change']:+,.0f})")
    change = m["change"]
    if change["compared_with"] is None:
        print(f"  since the last run: nothing to compare with ({change['note']})")
        return
    moved = [f"{name} {v['change']:+,}" for group in ("limit_action", "accounts")
             for name, v in change["counts"][group].items() if v["change"] and name != "scored"]
    print(f"  since the run as of {change['compared_with']['as_of']}: " + ("  ".join(moved) or "no count changed"))


if __name__ == "__main__":
    sys.exit(main())
