"""python train.py: build the panel, train and validate the three target models, log and register them.

With no arguments it trains on data/synthetic/demo (generated first if missing, a few seconds), logs to the
embedded local mlflow store (sqlite:///mlflow.db) and registers the model as dynascore: the new version
becomes champion if it trains the champion's targets, its default model beats the champion's on the
out-of-time rows and no other target is worse; otherwise challenger, and the decision says why. It ends
with where the model is and the score.py command that scores with it.

Examples:
  python train.py
  python train.py --data data/synthetic/goal --targets default early_warning --tune-trials 20
  python train.py --labels my_labels.csv --config train.toml --tracking-uri http://127.0.0.1:5000
  python train.py --extra bureau.csv            # the models read the file's columns too; score.py then needs them
  python train.py --panel data/panel --panel-customers 0.5   # a panel folder built on Spark, half its customers

An --extra file holds account_id, optionally as_of, and columns of numbers or true/false, e.g.
  account_id,as_of,bureau_score,has_mortgage
  10000001,2024-01-31,640,true
  10000001,2024-07-31,655,true
With as_of each row is a value known from that day: a panel row as of T reads the account's latest row dated
on or before T. Without it there is one row per account (application data), known throughout. Accounts with no
row (yet) read missing values and are counted; text columns, repeated keys and names the catalog uses are refused.

A --panel folder is the training panel built on Spark (python -m training panel DIR --out PANEL): the same rows as
the panel built here, so the same models. The fit stays on this machine (LightGBM on Spark is not
deterministic at scale); --panel-customers keeps a stable share of the customers when the panel is larger than
memory. The folder must match today's feature catalog and the config's labels and as-of settings.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, existing_file, mlflow_output, not_a_file, positive
from features.targets import TARGET_NAMES

DEMO = Path("data/synthetic/demo")
ABOUT, _, EXAMPLES = __doc__.rstrip().partition("\n\n")


def _data(text: str) -> Path:
    """--data: a directory that exists, or the demo's (generated when missing)."""
    return DEMO if Path(text) == DEMO and not DEMO.exists() else data_directory(text)


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python train.py", description=ABOUT, epilog=f"{EXAMPLES}\n\n{EXIT_CODES}")
    ap.add_argument("--data", type=_data, default=DEMO, metavar="DIR",
                    help=f"data directory in the contract (default {DEMO}; generated if it is the default and missing)")
    ap.add_argument("--as-of-start", type=day, metavar="YYYY-MM-DD",
                    help="first as-of month end (default: 3 months in)")
    ap.add_argument("--as-of-end", type=day, metavar="YYYY-MM-DD",
                    help="last as-of month end (default: the extraction date)")
    ap.add_argument("--extracted-on", type=day, metavar="YYYY-MM-DD", help="the day the extract was taken: events "
                    "after it are refused (default: extraction_date in the extract's _manifest.json, else the latest "
                    "event date, never after today, with a warning)")
    ap.add_argument("--targets", nargs="+", choices=TARGET_NAMES, metavar="TARGET",
                    help="targets to train (default: default early_warning self_cure; also early_warning_beyond_grace)")
    ap.add_argument("--labels", type=existing_file, metavar="FILE",
                    help="train on supplied labels (CSV/Parquet: account_id, as_of, target, label) instead of derived")
    ap.add_argument("--extra", type=existing_file, metavar="FILE",
                    help="columns from outside the histories (CSV/Parquet: account_id, optional as_of, numbers or "
                         "true/false; see below) for the models to read too; score.py then needs --extra")
    ap.add_argument("--panel", type=data_directory, metavar="DIR",
                    help="train on a panel folder built on Spark (python -m training panel) instead of building "
                         "the panel from --data; not with --labels, --extra or latent_state = true (the filter needs "
                         "the histories)")
    ap.add_argument("--panel-customers", type=_share, metavar="SHARE",
                    help="with --panel: keep this share (0 < SHARE <= 1) of the customers, a stable hash sample read "
                         "with a filter, every account of a kept customer whole (a panel larger than memory)")
    ap.add_argument("--config", type=existing_file, metavar="FILE", help="TOML config: [train] [lightgbm] [labels] "
                    "[score_scale] [promotion] (see training/config.py)")
    ap.add_argument("--seed", type=int, metavar="N", help="random seed (overrides the config)")
    ap.add_argument("--tune-trials", type=positive(), metavar="N",
                    help="hyperparameter search with N trials (deterministic)")
    ap.add_argument("--tune-timeout", type=positive(float, "a number of seconds"), metavar="SECONDS",
                    help="hyperparameter search for a time budget")
    ap.add_argument("--tracking-uri", metavar="URI", help="mlflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    ap.add_argument("--experiment", default="dynascore", metavar="NAME", help="mlflow experiment (default dynascore)")
    ap.add_argument("--model-name", default="dynascore", metavar="NAME",
                    help="registered model name (default dynascore)")
    ap.add_argument("--reports", type=not_a_file, default=Path("reports"), metavar="DIR",
                    help="where the HTML report goes (default reports/)")
    ap.add_argument("--verbose", action="store_true",
                    help="also mlflow's own messages: its INFO log lines and download bars")
    return ap


def _share(text: str) -> float:
    """--panel-customers: a share in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share in (0, 1]")
    return value


def _panel_conflicts(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--panel holds the data's rows and labels already: what would change them is refused."""
    if args.panel is None:
        if args.panel_customers is not None:
            ap.error("argument --panel-customers: it samples a --panel folder; give --panel DIR")
        return
    for option, value in (("--data", args.data != DEMO), ("--labels", args.labels), ("--extra", args.extra),
                          ("--extracted-on", args.extracted_on)):
        if value:
            ap.error(f"argument {option}: not with --panel (the panel folder was built from its data, labels and "
                     "extraction date already)")


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.as_of_start and args.as_of_end and args.as_of_start > args.as_of_end:
        ap.error(f"argument --as-of-start: {args.as_of_start} is after --as-of-end {args.as_of_end}")
    _panel_conflicts(ap, args)
    mlflow_output(args.verbose)
    from dataclasses import replace

    from features.contract import ContractError
    from models.registry import TrackingError, check_server, tracking_uri
    from training.config import ConfigError, load_config
    from training.job import run_training

    try:
        cfg, promotion = load_config(args.config)
        cfg = replace(cfg, **_config_days(cfg, args.config))
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
    if args.panel is None and not args.data.exists():
        print(f"no data at {DEMO}: generating the demo world (about 20,000 accounts, 36 months of history and "
              "36 as-of months) ...")
        from simulation.generate import Request, format_summary, generate

        print(format_summary(generate(DEMO, Request(20_000, 36, seed=42)), DEMO))
    t0 = time.perf_counter()
    try:
        run = run_training(None if args.panel else args.data, cfg, uri=uri, experiment=args.experiment,
                           model_name=args.model_name, reports_dir=args.reports, labels_file=args.labels,
                           ece_tolerance=promotion["ece_tolerance"], extracted_on=args.extracted_on,
                           extra_file=args.extra, panel_dir=args.panel, panel_customers=args.panel_customers)
    except (ContractError, TrackingError, ValueError) as exc:
        return _fail(str(exc))
    _summary(run, uri, time.perf_counter() - t0)
    if args.panel:  # score the data the panel was built from
        from training.spark_panel import panel_info

        args.data = Path(panel_info(args.panel)["data"])
    print(f"score with: {score_command(run.logged.model_uri, args, uri)}")
    return 0


def _config_days(cfg, path: Path | None) -> dict[str, str]:
    """The config's [train] as_of_start and as_of_end held to YYYY-MM-DD as the options are (a TOML date or
    string), or a ValueError naming the file and key."""
    days = {}
    for key in ("as_of_start", "as_of_end"):
        value = getattr(cfg, key)
        if value is not None:
            try:
                days[key] = day(str(value))
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"{path}: [train] {key}: {exc}") from None
    return days


def score_command(model_uri: str, args: argparse.Namespace, uri: str) -> str:
    """The score.py command that scores with the model just registered, on the data it was trained on."""
    from models.registry import DEFAULT_URI

    words = ["python", "score.py", "--model", model_uri]
    if args.data != DEMO:
        words += ["--data", str(args.data)]
    if args.extracted_on:
        words += ["--extracted-on", args.extracted_on]
    if args.extra:
        words += ["--extra", str(args.extra)]
    if uri != DEFAULT_URI:
        words += ["--tracking-uri", uri]
    return shlex.join(words)


def _summary(run, uri: str, seconds: float) -> None:
    result, logged = run.result, run.logged
    print(f"\ntrained in {seconds:.1f} s on data fingerprint {result.fingerprint}")
    for name, r in result.targets.items():
        m = r.metrics["test"]
        line = (f"  {name:<27} {r.plan.held_out} AUC {m['auc']:.3f} [{m.get('auc_lo', float('nan')):.3f}, "
                f"{m.get('auc_hi', float('nan')):.3f}]  Gini {m['gini']:.3f}  KS {m['ks']:.3f}  "
                f"ECE {m['ece']:.4f}  scorecard AUC {r.scorecard['test']['auc']:.3f}")
        if r.oracle:
            line += f"  Bayes-optimal AUC {r.oracle['oracle_auc']:.3f} (ratio {r.oracle['auc_ratio']:.3f})"
        print(line)
    print(f"registered {logged.model_uri} version {logged.version} as {logged.alias}: {logged.decision}")
    print(f"run {logged.run_id}; report {run.report or 'none (trained on a panel folder)'}")
    if run.bundle_dir is not None:
        print(f"bundle: {run.bundle_dir} (score.py --model takes this directory too)")
    print(f"look: {uri}" if uri.startswith(("http://", "https://")) else f"look: mlflow ui --backend-store-uri {uri}")


if __name__ == "__main__":
    sys.exit(main())
