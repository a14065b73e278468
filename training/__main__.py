"""python -m training panel: build the training panel of an extract on Spark, for train.py --panel.

The panel (features and labels for every account and as-of month end) is built by Spark's executors, one group
of whole customers at a time, with the same code the local trainer runs, and written as a folder of Parquet
parts with _panel.json. train.py --panel DIR then fits on one machine, on the whole panel or a stable share of
its customers (--panel-customers). Needs the [spark] extra.

Examples:
  python -m training panel data/synthetic/demo --out data/panel --spark-master 'local[2]'
  python -m training panel /mnt/book --out /mnt/panels/2026-12 --config train.toml --buckets 400
  python train.py --panel data/panel --panel-customers 0.5
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from features.cli import EXIT_CODES, Parser, data_directory, day, existing_file, positive, refused

ABOUT, _, MORE = __doc__.rstrip().partition("\n\n")


def _parser() -> Parser:
    parser = Parser(prog="python -m training", description=ABOUT, epilog=f"{MORE}\n\n{EXIT_CODES}")
    commands = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    panel = commands.add_parser(
        "panel", help="build the training panel of DIR on Spark into a folder train.py --panel reads",
        epilog=EXIT_CODES, description=MORE.split("\n\nExamples:")[0])
    panel.add_argument("data_dir", metavar="DIR", type=data_directory, help="data directory in the contract (Parquet)")
    panel.add_argument("--out", type=Path, required=True, metavar="DIR",
                       help="the panel folder (written whole or not at all)")
    panel.add_argument("--overwrite", action="store_true", help="replace an existing panel folder at --out")
    panel.add_argument("--config", type=existing_file, metavar="FILE",
                       help="TOML config whose [train] as-of and [labels] settings the panel follows (the one "
                            "train.py will be given)")
    panel.add_argument("--as-of-start", type=day, metavar="YYYY-MM-DD", help="first as-of month end")
    panel.add_argument("--as-of-end", type=day, metavar="YYYY-MM-DD", help="last as-of month end")
    panel.add_argument("--extracted-on", type=day, metavar="YYYY-MM-DD", help="the day the extract was taken "
                       "(default: extraction_date in its _manifest.json, else the latest event date)")
    panel.add_argument("--buckets", type=positive(), metavar="N",
                       help="customer groups (default about 10,000 accounts each; an extract laid out by "
                            "python -m features bucket keeps its own)")
    panel.add_argument("--spark-master", metavar="URL", help="Spark master, e.g. local[2] or yarn (default: what "
                       "spark-submit gives, else local[*])")
    return parser


def _panel(args) -> int:
    from dataclasses import replace

    from features.contract import ContractError
    from training.config import ConfigError, load_config
    from training.spark_panel import build_panel_spark

    if args.out.exists() and not args.overwrite:
        return refused(f"--out {args.out} exists: name a new folder, or add --overwrite")
    try:
        cfg, _ = load_config(args.config)
        cfg = replace(cfg, **{k: v for k, v in {"as_of_start": args.as_of_start,
                                               "as_of_end": args.as_of_end}.items() if v is not None})
    except (ConfigError, ValueError) as exc:
        return refused(str(exc), 2)
    try:
        from features.spark_session import spark_session

        spark = spark_session(args.spark_master, app="dynascore-panel")
    except ImportError:
        return refused("the panel is built on Spark: pip install -c constraints.txt -e '.[spark]'")
    try:
        info = build_panel_spark(spark, args.data_dir, cfg, out_dir=args.out, buckets=args.buckets,
                                 extracted_on=args.extracted_on)
    except (ContractError, ValueError) as exc:
        return refused(str(exc))
    finally:
        spark.stop()
    print(f"wrote {args.out}: {info['rows']:,} rows x {len(info['features'])} features, as of "
          f"{info['as_of_start']} .. {info['as_of_end']}, {info['run']['buckets']:,} customer groups")
    print(f"train with: python train.py --panel {args.out}" + (f" --config {args.config}" if args.config else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _panel(args)


if __name__ == "__main__":
    sys.exit(main())
