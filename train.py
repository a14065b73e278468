"""python train.py: build the panel, train and validate the three target models, log and register them.

With no arguments it trains on data/synthetic/demo (generated first if missing, a few seconds), logs to the
embedded local mlflow store (sqlite:///mlflow.db) and registers the model as `dynascore`: the new version
becomes `champion` if it beats the current one on the out-of-time rows, otherwise `challenger`.

Examples:
  python train.py
  python train.py --data data/synthetic/goal --targets default early_warning --tune-trials 20
  python train.py --labels my_labels.csv --config train.toml --tracking-uri http://127.0.0.1:5000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEMO = Path("data/synthetic/demo")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python train.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEMO, help=f"data directory in the contract (default {DEMO}; "
                    "generated if it is the default and missing)")
    ap.add_argument("--as-of-start", metavar="YYYY-MM-DD", help="first as-of month end (default: 3 months in)")
    ap.add_argument("--as-of-end", metavar="YYYY-MM-DD", help="last as-of month end (default: the extraction date)")
    ap.add_argument("--extracted-on", metavar="YYYY-MM-DD", help="the day the extract was taken: events after it are "
                    "refused (default: extraction_date in the extract's _manifest.json, else the latest event date, "
                    "never after today, with a warning)")
    ap.add_argument("--targets", nargs="+", metavar="TARGET",
                    help="targets to train (default: default early_warning self_cure; also early_warning_beyond_grace)")
    ap.add_argument("--labels", type=Path, metavar="FILE",
                    help="train on supplied labels (CSV/Parquet: account_id, as_of, target, label) instead of derived")
    ap.add_argument("--config", type=Path, metavar="FILE", help="TOML config: [train] [lightgbm] [labels] "
                    "[score_scale] [promotion] (see training/config.py)")
    ap.add_argument("--seed", type=int, help="random seed (overrides the config)")
    ap.add_argument("--tune-trials", type=int, metavar="N", help="hyperparameter search with N trials (deterministic)")
    ap.add_argument("--tune-timeout", type=float, metavar="SECONDS", help="hyperparameter search for a time budget")
    ap.add_argument("--tracking-uri", help="mlflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ap.add_argument("--experiment", default="dynascore", help="mlflow experiment (default dynascore)")
    ap.add_argument("--model-name", default="dynascore", help="registered model name (default dynascore)")
    ap.add_argument("--reports", type=Path, default=Path("reports"),
                    help="where the HTML report goes (default reports/)")
    return ap


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from dataclasses import replace

    from features.contract import ContractError
    from models.registry import TrackingError, check_server, tracking_uri
    from training.config import ConfigError, load_config
    from training.job import run_training

    try:
        cfg, promotion = load_config(args.config)
        changes = {k: v for k, v in {"targets": tuple(args.targets) if args.targets else None,
                                     "as_of_start": args.as_of_start, "as_of_end": args.as_of_end, "seed": args.seed,
                                     "tune_trials": args.tune_trials, "tune_timeout": args.tune_timeout}.items()
                   if v is not None}
        cfg = replace(cfg, **changes)
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc), 2)
    uri = tracking_uri(args.tracking_uri)
    try:
        check_server(uri)
    except TrackingError as exc:
        return _fail(str(exc))
    if not args.data.exists():
        if args.data != DEMO:
            return _fail(f"data directory {args.data} does not exist; generate one with "
                         "`python -m simulation generate --out DIR` or point --data at your tables", 2)
        print(f"no data at {DEMO}: generating the demo world (20,000 accounts x 36 months) ...")
        from simulation.generate import Request, format_summary, generate

        print(format_summary(generate(DEMO, Request(20_000, 36, seed=42)), DEMO))
    t0 = time.perf_counter()
    try:
        run = run_training(args.data, cfg, uri=uri, experiment=args.experiment, model_name=args.model_name,
                           reports_dir=args.reports, labels_file=args.labels,
                           ece_tolerance=promotion["ece_tolerance"], extracted_on=args.extracted_on)
    except (ContractError, TrackingError, ValueError) as exc:
        return _fail(str(exc))
    result, logged, report = run.result, run.logged, run.report
    _summary(result, logged, report, uri, time.perf_counter() - t0)
    return 0


def _summary(result, logged, report: Path, uri: str, seconds: float) -> None:
    print(f"\ntrained in {seconds:.1f} s on data fingerprint {result.fingerprint}")
    for name, r in result.targets.items():
        m = r.metrics["test"]
        line = (f"  {name:<27} out-of-time AUC {m['auc']:.3f} [{m.get('auc_lo', float('nan')):.3f}, "
                f"{m.get('auc_hi', float('nan')):.3f}]  Gini {m['gini']:.3f}  KS {m['ks']:.3f}  "
                f"ECE {m['ece']:.4f}  scorecard AUC {r.scorecard['test']['auc']:.3f}")
        if r.oracle:
            line += f"  Bayes-optimal AUC {r.oracle['oracle_auc']:.3f} (ratio {r.oracle['auc_ratio']:.3f})"
        print(line)
    print(f"registered {logged.model_uri} version {logged.version} as {logged.alias}: {logged.decision}")
    print(f"run {logged.run_id}; report {report}")
    print(f"look: mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite") else f"look: {uri}")


if __name__ == "__main__":
    sys.exit(main())
