"""python -m simulation generate: write a synthetic Huabei/Jiebei credit world as Parquet.

Write the tables of the data contract (accounts, bills, payments, limits), the macro series and the ground
truth under --out, with an extract manifest (extraction date, first as-of day and control totals); same
arguments give identical tables. The world is a living book: customers arrive every month, lines are closed
and loans repaid, and the tables hold --history-months of warehouse history before the --months as-of
months the truth covers. Then print the world's delinquency profile.

Examples:
  python -m simulation generate                                   # 20,000 accounts, 36 + 36 months
  python -m simulation generate --accounts 100000 --months 24 --scenario shock --out data/synthetic/shock
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, not_a_file, positive

DEFAULT_OUT = Path("data/synthetic/demo")
_, ABOUT, EXAMPLES = __doc__.rstrip().split("\n\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m simulation", epilog=f"{EXAMPLES}\n\n{EXIT_CODES}",
                    description="Synthetic consumer-credit world with known ground truth (see README, 'The synthetic "
                                "world').")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    gen = sub.add_parser("generate", help="write accounts, bills, payments, limits, macro and truth tables",
                         description=ABOUT, epilog=f"{EXAMPLES}\n\n{EXIT_CODES}")
    gen.add_argument("--accounts", type=positive(), default=20_000, metavar="N",
                     help="accounts open on the book, which stays about that size (default 20,000)")
    gen.add_argument("--months", type=positive(), default=36, metavar="N",
                     help="as-of months, the first 2023-01, with truth at each month end (default 36)")
    gen.add_argument("--history-months", type=int, default=36, metavar="N",
                     help="months of warehouse history before the first as-of month (default 36: every feature "
                          "window is full of history there)")
    gen.add_argument("--seed", type=int, default=42, metavar="N", help="random seed (default 42)")
    gen.add_argument("--scenario", choices=("baseline", "shock"), default="baseline",
                     help="baseline (seasonality only, the default) or shock: the household stress index rises "
                          "from --shock-month on")
    gen.add_argument("--shock-month", type=int, default=None, metavar="N",
                     help="as-of month of the shock, 0 the first (default: the middle one)")
    gen.add_argument("--out", type=not_a_file, default=DEFAULT_OUT, metavar="DIR",
                     help=f"output directory (default {DEFAULT_OUT}); an existing one must be empty or hold "
                          "a generated world, which is replaced")
    gen.add_argument("--workers", type=positive(), default=2, metavar="N",
                     help="processes (default 2; the output does not depend on it)")
    gen.add_argument("--chunk-accounts", type=positive(), default=50_000, metavar="N",
                     help="open accounts' worth of customers per chunk (default 50,000): bounds memory; the output "
                          "does not depend on it")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    view = sub.add_parser("monthly", help="a world as a bureau's monthly file (status, statement, paid, limit) "
                          "and its outcomes as a labels file", epilog=EXIT_CODES,
                          description="Write a world's monthly view: per account and month a status code (months past "
                                      "due 1..6, or C, R, N, 0, L, W: see simulation/monthly_view.py), the statement, "
                                      "the paid amount and the limit, for the --months months ending at the snapshot "
                                      "(VIEW/monthly.parquet); and the default outcome after the snapshot "
                                      "(VIEW/labels.parquet, train.py --labels' form). Then: python -m features "
                                      "adapt monthly VIEW/monthly.parquet --out DIR.")
    view.add_argument("data_dir", metavar="DIR", type=data_directory, help="a world written by python -m simulation "
                      "generate")
    view.add_argument("--months", type=positive(), default=6, metavar="N", help="monthly reports (default 6)")
    view.add_argument("--snapshot", type=day, metavar="YYYY-MM-DD", help="the last report's month end "
                      "(default: the latest whose default outcome is complete)")
    view.add_argument("--out", type=not_a_file, required=True, metavar="VIEW", help="a new folder for the view")
    return parser


def _monthly(args) -> int:
    from features.builders import Prepared
    from features.contract import ContractError
    from features.extract_manifest import load_extract
    from simulation.monthly_view import write_view

    try:
        prep = Prepared(load_extract(args.data_dir))
        rows, labels = write_view(prep, args.out, args.months, args.snapshot)
    except (ContractError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: monthly.parquet {rows:,} rows, labels.parquet {labels:,} accounts")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "monthly":
        return _monthly(args)
    from simulation.generate import GenerateError, Request, format_summary, generate

    req = Request(args.accounts, args.months, args.seed, args.scenario, args.shock_month, args.chunk_accounts,
                  args.workers, args.history_months)
    try:
        summary = generate(args.out, req, progress=not args.quiet)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(format_summary(summary, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
