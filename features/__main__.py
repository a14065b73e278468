"""``python -m features validate DIR``: check a data folder against the contract before anything runs on it.

Exit codes: 0 valid, 1 the data breaks the contract, 2 the command was used wrongly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from features.contract import CORE_TABLES, SCHEMAS, ContractError, Tables, load_tables


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m features", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check the tables of DIR and print a summary per table")
    check.add_argument("data_dir", metavar="DIR", type=Path)
    check.add_argument("--truth", action="store_true", help="also load and check the synthetic truth table")
    return parser


def summary(tables: Tables) -> list[str]:
    """One line per loaded table: rows and the range of its dates."""
    lines = []
    for name, frame in tables.loaded().items():
        dates = [frame[c] for c in SCHEMAS[name].date_columns]
        first = min((d.min() for d in dates if d.notna().any()), default=None)
        last = max((d.max() for d in dates if d.notna().any()), default=None)
        span = f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}" if first is not None else "no dates"
        lines.append(f"{name:<9} {len(frame):>13,} rows   {span}")
    if tables.extraction_date is not None:
        lines.append(f"extraction date {tables.extraction_date:%Y-%m-%d}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"error: {args.data_dir} is not a directory", file=sys.stderr)
        return 2
    optional = ("macro", "truth") if args.truth else ("macro",)
    try:
        tables = load_tables(args.data_dir, require=CORE_TABLES, optional=optional)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary(tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
