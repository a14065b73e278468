"""Generate a synthetic world, truth and Parquet writes included, and time it.

Goal: a book of 1,000,000 accounts open at the end, 24 months of history + 36 as-of months, in at most 120 s
and 8 GB peak (the process tree) on a 2-core machine.
Beside it runs the same generation on one worker at a tenth of the size: the ratio of the time per account
shows what the parallel, chunked path buys.

Examples:
  python -m bench simulate                                 # the goal's size, 1,000,000 accounts, 24 + 36 months
  python -m bench simulate --accounts 5000 --months 12     # a small run
  python -m bench simulate --workers 1                     # one process
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.cli import bench_parser
from bench.measure import PeakMemory, Timer
from simulation.generate import Request, generate, profile_summary

GOAL_SECONDS, GOAL_GB = 120.0, 8.0


def run(argv: list[str]) -> dict:
    args = bench_parser("simulate", __doc__, accounts=1_000_000, months=36, workers=2, history=24).parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    try:
        with PeakMemory() as mem, Timer() as t:
            summary = generate(tmp / "world", Request(args.accounts, args.months, args.seed, workers=args.workers,
                                                         history_months=args.history_months),
                               progress=False)
        base_accounts = max(args.accounts // 10, 1)
        with Timer() as tb:
            generate(tmp / "base", Request(base_accounts, args.months, args.seed, workers=1,
                                            history_months=args.history_months), progress=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summary["rows"]
    total = sum(rows.values())
    per_acc, base_per_acc = t.seconds / args.accounts, tb.seconds / base_accounts
    prof = profile_summary(summary)
    print(f"simulate: {args.accounts:,} accounts ({summary['open_accounts_at_end']:,} open at the end), "
          f"{args.history_months} + {args.months} months, {args.workers} workers "
          f"({rows['bills']:,} bills, {rows['payments']:,} payments, {rows['truth']:,} truth rows)")
    print(f"  wall {t.seconds:.1f} s   {total / t.seconds:,.0f} rows/s   peak {mem.peak_gb:.2f} GB (process tree)")
    print(f"  baseline (1 worker, {base_accounts:,} accounts) {tb.seconds:.1f} s; "
          f"time per account vs baseline {per_acc / base_per_acc:.2f}")
    print(f"  goal <= {GOAL_SECONDS:.0f} s and <= {GOAL_GB:.0f} GB at 1 M, 24 + 36 months: "
          f"time ratio {t.seconds / GOAL_SECONDS:.2f}, memory ratio {mem.peak_gb / GOAL_GB:.2f}")
    print(f"  30+ DPD {prof['dpd30_rate']:.2%}, 90+ DPD {prof['dpd90_rate']:.2%}, "
          f"short lags per 30-DPD bill {prof['short_lag_per_dpd30_bill']:.1f}")
    return {"bench": "simulate", "accounts": args.accounts, "months": args.months,
            "history_months": args.history_months, "workers": args.workers,
            "open_at_end": summary["open_accounts_at_end"], "accounts_ever": rows["accounts"],
            "rows": total, "bills": rows["bills"], "payments": rows["payments"], "truth_rows": rows["truth"],
            "wall_s": round(t.seconds, 2), "rows_per_s": round(total / t.seconds), "peak_gb": round(mem.peak_gb, 2),
            "baseline_s": round(tb.seconds, 2), "per_account_ratio": round(per_acc / base_per_acc, 3),
            "dpd30_rate": round(prof["dpd30_rate"], 4), "dpd90_rate": round(prof["dpd90_rate"], 4)}
