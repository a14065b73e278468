"""The validation pack from existing score files, against the same numbers computed by hand.

Goal, at 1,000,000 accounts and 12 month ends of outcomes: `python -m validation report --scores` in at most
60 s wall. Timed: reading the data (contract checks included) and the score files, the outcomes of every row,
every section (AUC with DeLong intervals clustered by account by month and segment, a fixed 100-resample
account bootstrap, per-grade tests, drift from the nights' histograms, migration, vintages and roll rates, the
replayed sample of 20,000 accounts with TreeSHAP and the monotonicity sweep, benchmarks, decisions) and
writing the page and its JSON. Not timed: the world, the model (trained once on a world of its own, as the
score benchmark's) and the nightly runs that write the score files, all made once and reused. The baseline in
the same process is what a reviewer would write by hand for a fraction of it: the panel's labels joined to the
score files with pandas and scikit-learn's AUC pooled, by month and by product.

Examples:
  python -m bench validation                                           # the goal's size
  python -m bench validation --accounts 5000 --train-accounts 20000    # a small run
"""
from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.cli import bench_parser
from bench.data import CACHE, dataset
from bench.measure import PeakMemory, Timer
from bench.score import model, model_options
from features.cli import positive
from features.contract import load_tables
from features.labels import build_labels
from review.evidence import complete_month_ends, read_scores
from review.gather import surveyed
from review.job import ReviewRequest
from review.job import run as review
from scoring.job import ScoreRequest
from scoring.job import run as score

GOAL_S = 60.0


def score_files(data: Path, bundle: Path, months: int) -> tuple[Path, list[pd.Timestamp]]:
    """The nightly job's outputs for the latest `months` complete month ends, written once and reused."""
    book = surveyed(data, None)
    window = complete_month_ends(book.first_day, book.extraction.day, months)
    folder = CACHE / f"{data.name}-scores-{bundle.name}"
    for day in window:
        out = folder / f"scores-{day.date()}.parquet"
        if not out.exists():
            print(f"scoring {day.date()} into {folder} (not timed)", file=sys.stderr)
            score(ScoreRequest(data, out, model=str(bundle), as_of=str(day.date())))
    return folder, window


def by_hand(data: Path, folder: Path, window: list[pd.Timestamp]) -> dict:
    """The baseline: labels from the panel's builder, joined with pandas, AUC from scikit-learn."""
    tables = load_tables(data, optional=("macro",))
    rows = read_scores(sorted(folder.glob("scores-*.parquet")))
    joined = rows.merge(build_labels(tables, window), on=["account_id", "as_of"])
    ok = joined["pd_default"].notna() & joined["default"].notna() & joined["complete_default"]
    j = joined[ok]
    out = {"pooled": roc_auc_score(j["default"], j["pd_default"])}
    for key in ("as_of", "product"):
        for value, g in j.groupby(key):
            if 0 < g["default"].sum() < len(g):
                out[f"{key}={value}"] = roc_auc_score(g["default"], g["pd_default"])
    return out


def run(argv: list[str]) -> dict:
    ap = bench_parser("validation", __doc__, accounts=1_000_000, months=24)
    model_options(ap)
    ap.add_argument("--window", type=positive(), default=12, metavar="N",
                    help="month ends of outcomes reviewed (default 12)")
    args = ap.parse_args(argv)
    data = dataset(args.accounts, args.months, args.seed, history=args.history_months)
    bundle = model(args.train_accounts, args.train_months, args.seed)
    folder, window = score_files(data, bundle, args.window)
    with tempfile.TemporaryDirectory() as tmp:
        marks: list[tuple[float, str]] = []
        with Timer() as t_pack, PeakMemory() as peak:
            html, js, pack = review(ReviewRequest(str(bundle), data, Path(tmp) / "review.html", scores=folder,
                                                  months=args.window, n_boot=100, log=False),
                                    progress=lambda text: marks.append((time.perf_counter(), text)))
            marks.append((time.perf_counter(), "end"))
        size_mb = (html.stat().st_size + js.stat().st_size) / 1e6
        findings = len(json.loads(js.read_text())["findings"])
    with Timer() as t_hand:
        hand = by_hand(data, folder, window)
    rows = len(pack.evidence.rows)
    at_goal_size = args.accounts >= 1_000_000 and len(window) >= 12
    stages = {a[1].removeprefix("section: ").split(" ")[0]: round(b[0] - a[0], 1)
              for a, b in itertools.pairwise(marks)}  # surveying, joining (the outcomes), each section, writing
    pooled = {r["target"]: r for r in pack.sections[1].numbers["pooled"].to_dict("records")}["default"]["auc"]
    fig = {"bench": "validation", "accounts": args.accounts, "month_ends": len(window), "rows": rows,
           "pack_s": round(t_pack.seconds, 1), "peak_gb": round(peak.peak_gb, 2), "checks": len(pack.checks),
           "findings": findings, "page_mb": round(size_mb, 1), "by_hand_s": round(t_hand.seconds, 1),
           "ratio": round(t_pack.seconds / t_hand.seconds, 2), "auc_equal": abs(pooled - hand["pooled"]) < 1e-9,
           "goal_s": GOAL_S, "goal_met": (t_pack.seconds <= GOAL_S) if at_goal_size else None, "stages_s": stages}
    print(f"validation: {rows:,} rows ({args.accounts:,} accounts x {len(window)} month ends) from score files")
    print(f"  pack {t_pack.seconds:.1f} s   peak {peak.peak_gb:.2f} GB   {len(pack.checks)} checks, {findings} "
          f"findings   page and JSON {size_mb:.1f} MB")
    print("  where the time went: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    print(f"  by hand (labels + pandas join + scikit-learn AUC pooled, by month, by product) {t_hand.seconds:.1f} s"
          f"   ratio {fig['ratio']:.2f}   pooled AUC equal: {fig['auc_equal']}")
    verdict = {True: "met", False: "NOT met", None: "not judged (a smaller run)"}[fig["goal_met"]]
    print(f"  goal: at most {GOAL_S:.0f} s at 1,000,000 accounts x 12 month ends: {verdict}")
    return fig

