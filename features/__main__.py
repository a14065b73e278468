"""python -m features: check a data folder, build features as of dates, adapt or lay out an extract, or write
the catalog page.

Each command has its own options: python -m features COMMAND --help.

Examples:
  python -m features validate data/synthetic/demo
  python -m features validate my_extract --extracted-on 2025-12-31 --truth
  python -m features build data/synthetic/demo --as-of 2025-06-30 2025-12-31 --out features.parquet
  python -m features adapt monthly bureau.csv --config monthly.toml --out data/bureau
  python -m features bucket data/extract --out data/extract-b64 --buckets 64    # on Spark: the [spark] extra
  python -m features catalog                    # writes docs/features.md from features/catalog.py
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, positive, refused
from features.contract import CORE_TABLES, SCHEMAS, ContractError, Tables
from features.extract_manifest import load_extract

CATALOG_PAGE = Path(__file__).resolve().parent.parent / "docs" / "features.md"
ABOUT, _, MORE = __doc__.rstrip().partition("\n\n")
EXTRACTED_ON = ("the day the extract was taken: events after it are refused (default: extraction_date in the "
                "extract's _manifest.json, else the latest event date, never after today, with a warning)")


def _parser() -> Parser:
    parser = Parser(prog="python -m features", description=ABOUT, epilog=f"{MORE}\n\n{EXIT_CODES}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    check = commands.add_parser(
        "validate", help="check the tables of DIR as train.py and score.py read them; one line per table",
        epilog=EXIT_CODES,
        description="Check the tables of DIR as train.py and score.py read them: the extract's _manifest.json and\n"
                    "its control totals, the data contract (columns, types, keys, dates) and the extraction date.\n"
                    "Prints one line per table (rows, first and last date), or what is wrong and where.")
    check.add_argument("data_dir", metavar="DIR", type=data_directory, help="data directory in the contract")
    check.add_argument("--truth", action="store_true", help="also load and check the synthetic truth table")
    check.add_argument("--extracted-on", type=day, metavar="YYYY-MM-DD", help=EXTRACTED_ON)
    build = commands.add_parser(
        "build", help="the whole feature catalog for every open account as of one or more days, to Parquet",
        epilog=EXIT_CODES,
        description="Compute every feature of the catalog (docs/features.md) for every account open at each as-of\n"
                    "day, as known at the end of that day: one row per account and day (account_id, as_of, then\n"
                    "the features).")
    build.add_argument("data_dir", metavar="DIR", type=data_directory, help="data directory in the contract")
    build.add_argument("--as-of", type=day, required=True, nargs="+", metavar="YYYY-MM-DD",
                       help="as-of days (end of day), at most the data's extraction date")
    build.add_argument("--out", required=True, type=Path, metavar="FILE",
                       help="output Parquet file (written atomically: a failed run leaves nothing there)")
    build.add_argument("--extracted-on", type=day, metavar="YYYY-MM-DD", help=EXTRACTED_ON)
    adapt = commands.add_parser(
        "adapt", help="a monthly bureau-style file (long or wide) as the contract's tables, in a new folder",
        epilog=EXIT_CODES,
        description="Read a monthly file (CSV or Parquet: per account and month a status code, the statement and\n"
                    "paid amounts and the limit; one row per account and month, or one row per account with a\n"
                    "column per month) as the layout file declares it (its status codes' meanings, its columns),\n"
                    "map it onto the data contract (features/adapters.py: bills of month precision, payments\n"
                    "placed as the statuses say and marked imputed where no amount was reported) and write\n"
                    "accounts, bills, payments and limits as Parquet into a new folder. The layout's format is\n"
                    "in features/monthly_file.py.")
    adapt.add_argument("kind", choices=["monthly"], help="the kind of source (monthly: bureau-style monthly rows)")
    adapt.add_argument("file", type=Path, metavar="FILE", help="the monthly file, CSV or Parquet")
    adapt.add_argument("--config", type=Path, metavar="TOML", help="its layout: status codes, wide columns, due day "
                       "(default: a long file with the default codes 0-6, C, R, N, X, L, W)")
    adapt.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="a new folder for the tables (written whole or not at all)")
    bucket = commands.add_parser(
        "bucket", help="lay an extract out by customer bucket, so Spark jobs read it without a shuffle ([spark])",
        epilog=EXIT_CODES,
        description="Rewrite the tables of DIR, on Spark, with one folder per customer bucket (bills/bucket=7/...,\n"
                    "a hash of the customer id), and _buckets.json saying how. score.py --engine spark and the\n"
                    "Spark panel then read each bucket where it lies instead of shuffling every row; the local\n"
                    "engine reads the folder as before. Other files (the manifest, macro) are copied unchanged.\n"
                    "Run it once when an extract lands: it costs about one shuffle of the extract.")
    bucket.add_argument("data_dir", metavar="DIR", type=data_directory, help="data directory in the contract (Parquet)")
    bucket.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="a new folder for the laid-out extract (written whole or not at all)")
    bucket.add_argument("--buckets", type=positive(), required=True, metavar="N",
                        help="customer buckets: about as many accounts each as score.py's --chunk-size (125,000), "
                             "so a bucket fits an executor's memory")
    bucket.add_argument("--spark-master", metavar="URL", help="Spark master, e.g. local[2] or yarn (default: what "
                        "spark-submit gives, else local[*])")
    cat = commands.add_parser("catalog", help="write the readable page of every feature (docs/features.md)",
                              epilog=EXIT_CODES, description="Write the page that lists every feature of "
                              "features/catalog.py: name, description, window and risk direction.")
    cat.add_argument("--out", type=Path, default=CATALOG_PAGE, metavar="FILE",
                     help="where to write it (default docs/features.md of this project)")
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

    if args.out.is_dir():
        return refused(f"--out {args.out}: {args.out} is a folder; name a new Parquet file (e.g. "
                        f"{args.out / 'features.parquet'})")
    tables = load_extract(args.data_dir, extracted_on=args.extracted_on)
    try:
        frame = build_features(tables, args.as_of)
    except ValueError as exc:  # an as-of day the data cannot answer (after its extraction date)
        return refused(str(exc))
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(tmp, index=False)
        tmp.replace(args.out)
    except OSError as exc:
        return refused(f"--out {args.out}: cannot write it ({exc.strerror or exc})")
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"wrote {args.out}: {len(frame):,} rows x {frame.shape[1] - 2} features")
    return 0


def _adapt(args) -> int:
    from features.adapters import from_monthly
    from features.monthly_file import LayoutError, last_month_end, load_layout, read_monthly, write_tables

    try:
        layout = load_layout(args.config)
        monthly = read_monthly(args.file, layout)
        tables = from_monthly(monthly, layout.config)
        extracted = last_month_end(monthly)
        write_tables(tables, args.out, extracted)
    except (LayoutError, ContractError) as exc:
        return refused(str(exc))
    except OSError as exc:
        return refused(f"--out {args.out}: cannot write it ({exc.strerror or exc})")
    print(f"wrote {args.out}")
    print("\n".join(summary(replace(tables, extraction=None))))  # the folder states its own: the manifest's
    print(f"extraction date {extracted}: the last day of the latest month reported (in its _manifest.json)")
    return 0


def _bucket(args) -> int:
    from features.extract_manifest import check_control_totals
    from features.spark_layout import refuse_laid_out, write_bucketed

    if args.out.exists():
        return refused(f"--out {args.out} exists: name a new folder")
    refuse_laid_out(args.data_dir)
    problems = check_control_totals(args.data_dir, sums=False)  # a truncated transfer is not laid out
    if problems:
        raise ContractError(problems)
    try:
        from features.spark_session import spark_session

        spark = spark_session(args.spark_master, app="dynascore-bucket")
    except ImportError:
        return refused("bucket runs on Spark: pip install -c constraints.txt -e '.[spark]'")
    try:
        info = write_bucketed(spark, args.data_dir, args.out, args.buckets)
    finally:
        spark.stop()
    print(f"wrote {args.out}: {info['buckets']:,} customer buckets; score it with "
          f"python score.py --engine spark --data {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "catalog":
        return _catalog(args.out)
    if args.command == "adapt":
        return _adapt(args)
    if args.command in ("build", "bucket"):
        try:
            return (_build if args.command == "build" else _bucket)(args)
        except ContractError as exc:
            return refused(str(exc))
    optional = ("macro", "truth") if args.truth else ("macro",)
    try:
        tables = load_extract(args.data_dir, extracted_on=args.extracted_on, require=CORE_TABLES, optional=optional)
    except ContractError as exc:
        return refused(str(exc))
    print("\n".join(summary(tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
