"""``python -m features``: check a data folder, build features as of a date, or write the catalog page.

  python -m features validate data/synthetic/demo
  python -m features build data/synthetic/demo --as-of 2025-06-30 --out features.parquet
  python -m features catalog                    # writes docs/features.md from features/catalog.py

Exit codes: 0 done, 1 the data breaks the contract, 2 the command was used wrongly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from features.contract import CORE_TABLES, SCHEMAS, ContractError, Tables
from features.extract_manifest import load_extract

CATALOG_PAGE = Path(__file__).resolve().parent.parent / "docs" / "features.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m features", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check the tables of DIR and print a summary per table")
    check.add_argument("data_dir", metavar="DIR", type=Path)
    check.add_argument("--truth", action="store_true", help="also load and check the synthetic truth table")
    check.add_argument("--extracted-on", metavar="YYYY-MM-DD", help="the day the extract was taken (default: its "
                       "_manifest.json's extraction_date, else the latest event date, never after today)")
    build = commands.add_parser("build", help="write the full feature catalog as of one or more dates to Parquet")
    build.add_argument("data_dir", metavar="DIR", type=Path)
    build.add_argument("--as-of", required=True, nargs="+", metavar="YYYY-MM-DD",
                       help="as-of dates (end of day); at most the data's extraction date")
    build.add_argument("--out", required=True, type=Path, help="output Parquet file (written atomically)")
    build.add_argument("--extracted-on", metavar="YYYY-MM-DD", help="the day the extract was taken (as validate)")
    cat = commands.add_parser("catalog", help="write the readable catalog page (docs/features.md)")
    cat.add_argument("--out", type=Path, default=CATALOG_PAGE, help=f"default {CATALOG_PAGE}")
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
    if tables.extraction is not None:
        lines.append(tables.extraction.note)
    return lines


def _catalog(out: Path) -> int:
    from features.catalog import default_catalog

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(default_catalog().to_markdown())
    print(f"wrote {out} ({len(default_catalog())} features)")
    return 0


def _build(args) -> int:
    import os

    from features.builders import build_features

    tables = load_extract(args.data_dir, extracted_on=args.extracted_on)
    try:
        frame = build_features(tables, args.as_of)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    try:
        frame.to_parquet(tmp, index=False)
        tmp.replace(args.out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {args.out}: {len(frame):,} rows x {frame.shape[1] - 2} features")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "catalog":
        return _catalog(args.out)
    if not args.data_dir.is_dir():
        print(f"error: {args.data_dir} is not a directory", file=sys.stderr)
        return 2
    if args.command == "build":
        try:
            return _build(args)
        except ContractError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    optional = ("macro", "truth") if args.truth else ("macro",)
    try:
        tables = load_extract(args.data_dir, extracted_on=args.extracted_on, require=CORE_TABLES, optional=optional)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary(tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
