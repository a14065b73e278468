"""python -m validation report: the validation pack of a model, back-tested on data it has not seen.

Writes a self-contained HTML page (plots embedded, opens offline) and the same numbers as JSON beside it
(<name>.json), and logs both to the model's mlflow run when the model is a registered version. The summary
comes first: every test against its declared threshold (review/thresholds.py), the model, its version, run,
seed and hyper-parameters, and the findings, each linked to its section. Then data and definitions,
discrimination, calibration on the master scale, stability and concentration, the portfolio (vintages, roll
rates), explanation, the benchmarks (scorecard, champion, oracle) and the decisions the nightly job logged.

The predictions are the nightly job's score files (--scores DIR, named scores-YYYY-MM-DD.parquet with their
manifests), or, without --scores, the review scores the window's month ends itself through the scoring job
(into <name>-scores/ beside the page). The window defaults to the latest 12 month ends whose outcomes the data
already show (the default target looks 6 months ahead).

Examples:
  python -m validation report --model models:/dynascore@champion --data data/synthetic/demo --out review.html
  python -m validation report --model models:/dynascore/3 --data DIR --scores scores/ \\
                              --from 2025-01-31 --to 2025-06-30 --out reviews/2025h1.html
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, mlflow_output, positive

ABOUT, _, EXAMPLES = __doc__.rstrip().partition("\n\n")


def parser() -> Parser:
    ap = Parser(prog="python -m validation", description="Model validation: the validation pack of a model.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rp = sub.add_parser("report", description=ABOUT, epilog=f"{EXAMPLES}\n\n{EXIT_CODES}",
                        help="back-test a model and write its validation pack (HTML and JSON)")
    rp.add_argument("--model", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION or a bundle directory")
    rp.add_argument("--data", type=data_directory, required=True, metavar="DIR",
                    help="data directory in the contract: the histories the outcomes are read from")
    rp.add_argument("--scores", type=Path, metavar="DIR", help="the nightly job's score files for the window "
                    "(default: score the window's month ends now)")
    rp.add_argument("--from", dest="start", type=day, metavar="YYYY-MM-DD", help="the window's first as-of date")
    rp.add_argument("--to", dest="end", type=day, metavar="YYYY-MM-DD", help="the window's last as-of date")
    rp.add_argument("--months", type=positive(), default=12, metavar="N", help="without --from/--to: the latest N "
                    "month ends whose outcomes are complete (default 12)")
    rp.add_argument("--out", type=Path, default=Path("reports/review.html"), metavar="FILE",
                    help="the HTML page (default reports/review.html); the JSON goes beside it")
    rp.add_argument("--bootstrap", type=positive(), default=100, metavar="N",
                    help="account-level bootstrap resamples of the AUC intervals (default 100)")
    rp.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    rp.add_argument("--tracking-uri", metavar="URI", help="mlflow tracking URI (default: $MLFLOW_TRACKING_URI or "
                    "sqlite:///mlflow.db)")
    rp.add_argument("--no-log", action="store_true", help="do not log the pack to the model's mlflow run")
    rp.add_argument("--verbose", action="store_true", help="also mlflow's own messages")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    t0 = time.perf_counter()
    mlflow_output(args.verbose)
    from features.contract import ContractError
    from models.bundle import BundleError
    from models.registry import TrackingError
    from review.job import ReviewError, ReviewRequest, run
    from review.pack import show
    from scoring.errors import ScoreError
    from validation.metrics import MetricError

    request = ReviewRequest(args.model, Path(args.data), args.out, scores=args.scores, start=args.start,
                            end=args.end, months=args.months, tracking_uri=args.tracking_uri, n_boot=args.bootstrap,
                            seed=args.seed, log=not args.no_log)
    try:
        html, js, pack = run(request, progress=lambda text: print(text, file=sys.stderr))
    except (ReviewError, ContractError, BundleError, TrackingError, ScoreError, MetricError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verdicts = pack.summary_table()["result"].value_counts()
    print(f"validation pack of {pack.header['model']} in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in verdicts.items()) + f"; findings {len(pack.findings)}")
    for section, check in pack.findings:
        print(f"  finding [{section.title}] {check.test}: {show(check.value)} (threshold {check.threshold})")
    print(f"wrote {html} and {js}")
    return 0
