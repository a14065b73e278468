"""Build the feature catalog on a simulated world, against an independent reference query and a naive apply.

Goal, at 1,000,000 accounts x 24 months on a 2-core machine: the full catalog for one as-of date (reading
included) in at most 0.2 x the time of the reference query, at most 6 GB peak, at least 100 x faster than a
per-account pandas groupby().apply, and twelve as-of dates in at most 4 x one date (both timed as the full
catalog is: reading included; the build alone is printed too).

The world is generated once into data/synthetic/bench-<accounts>x<months>-s<seed> and reused while its
manifest matches; generation is not timed. The builder's peak memory is measured in a process of its own
(read + build, nothing else), because the reference and the apply baseline add several GB to this one.
The reference query is ../shared/reference/subset_polars.py beside the project (or --reference).

Examples:
  python -m bench features                                             # the goal's size
  python -m bench features --accounts 3000 --months 24 --sample 200    # a small run
  python -m bench features --as-of-dates 6 --reference path/to/subset_polars.py
"""
from __future__ import annotations

import gc
import importlib.util
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bench.cli import bench_parser
from bench.data import dataset
from bench.measure import Timer
from features.builders import Prepared, build_features, to_days
from features.catalog import REFERENCE_COLUMNS, default_catalog
from features.cli import existing_file, positive
from features.contract import Tables, find_table, load_tables

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "subset_polars.py"
GOAL_REF_RATIO, GOAL_GB, GOAL_APPLY_SPEEDUP, GOAL_DATES_RATIO = 0.2, 6.0, 100.0, 4.0
WARMUP_ACCOUNTS = 200
MULTI_DATE_FACTOR = 1.2  # memory of the multi-date build over its output frame (measured ~1.05), with a margin
MEMORY_SHARE = 0.8  # of MemAvailable the multi-date build may use; the machine is shared
TOLERANCE = 1e-9


def run(argv: list[str]) -> dict:
    ap = bench_parser("features", __doc__, accounts=1_000_000, months=24, data=True)
    ap.add_argument("--as-of-dates", type=positive(), default=12, metavar="N",
                    help="month ends in the multi-date build (default 12)")
    ap.add_argument("--sample", type=positive(), default=2000, metavar="N",
                    help="accounts timed with the pandas apply baseline, then extrapolated (default 2,000)")
    ap.add_argument("--reference", type=existing_file, default=REFERENCE, metavar="FILE",
                    help="the reference query, subset_polars.py (default ../shared/reference/subset_polars.py "
                         "beside the project)")
    args = ap.parse_args(argv)
    reference = _load_reference(args.reference)
    data = args.data or dataset(args.accounts, args.months, args.seed, history=args.history_months)
    m = measure(data, reference, args)
    _print(m)
    return _figures(m, args.months)


def measure(data: Path, reference, args) -> SimpleNamespace:
    """Every figure of the run, unrounded: one date against the reference and the apply, then many dates."""
    m = SimpleNamespace(peak=_peak_in_child(data))  # first, while this process is still small
    with Timer() as t_compile:  # the compiled kernels of reading, checking and building, on a few accounts
        warm_up(data)
    with Timer() as t_read:
        tables = load_tables(data)
    m.as_of = as_of = last_month_end(tables)
    with Timer() as t_prep:
        prep = Prepared(tables)
    with Timer() as t_build:
        frame = build_features(prep, [as_of])
    m.compile_s, m.read_s, m.prep_s, m.build_s = t_compile.seconds, t_read.seconds, t_prep.seconds, t_build.seconds
    m.bills, m.payments = len(tables.bills), len(tables.payments)
    m.wall = m.read_s + m.prep_s + m.build_s
    m.compute = m.prep_s + m.build_s

    m.ref = _run_reference(reference, data, as_of)
    m.equal, m.mismatches = compare(frame, m.ref["frame"], REFERENCE_COLUMNS)
    del m.ref["frame"]
    gc.collect()

    m.apply = _apply_baseline(tables, frame, as_of, min(args.sample, len(tables.accounts)), args.seed)

    m.n_acc, m.features, m.rows = len(tables.accounts), len(default_catalog()), len(frame)
    del tables, frame  # the multi-date build keeps only the prepared arrays
    gc.collect()
    m.dates = month_ends(as_of, args.as_of_dates, prep)
    m.need_gb, m.free_gb = multi_date_need_gb(prep, m.dates, m.features), available_gb()
    m.dates_s = m.many_rows = None
    if m.need_gb <= MEMORY_SHARE * m.free_gb:
        with Timer() as t_dates:
            m.many_rows = len(build_features(prep, m.dates))
        m.dates_s = t_dates.seconds
        gc.collect()

    m.ref_ratio = m.wall / m.ref["total_s"]
    m.apply_ratio = m.compute / m.apply["extrapolated_s"]
    # twelve dates against one, both as the full catalog is timed: reading and preparing included (done once)
    m.dates_ratio = None if m.dates_s is None else (m.read_s + m.prep_s + m.dates_s) / m.wall
    m.dates_build_ratio = None if m.dates_s is None else m.dates_s / m.build_s
    return m


def _print(m: SimpleNamespace) -> None:
    ref, apply, dates, peak = m.ref, m.apply, m.dates, m.peak
    print(f"features: {m.bills:,} bills + {m.payments:,} payments / {m.n_acc:,} accounts as of {m.as_of.date()} "
          f"({m.features} features, {m.rows:,} rows)")
    print(f"  read {m.read_s:.1f} s   prepare {m.prep_s:.1f} s   build {m.build_s:.1f} s   "
          f"compile {m.compile_s:.1f} s (once, apart)   full catalog {m.wall:.1f} s   "
          f"{(m.bills + m.payments) / m.wall / 1e6:.1f} M rows/s")
    print(f"  peak {peak['peak_gb']:.2f} GB (read + build in a process of its own: read {peak['read_s']:.1f} s, "
          f"build {peak['build_s']:.1f} s)")
    print(f"  reference subset (polars) {ref['total_s']:.1f} s (read {ref['read_s']:.1f} s + query "
          f"{ref['query_s']:.1f} s)   ratio {m.ref_ratio:.2f}   values equal: {m.equal}/{len(REFERENCE_COLUMNS)} "
          f"columns on {ref['rows']:,} accounts")
    for line in m.mismatches:
        print(f"    differs: {line}")
    print(f"  pandas groupby().apply ({', '.join(APPLY_COLUMNS)}) on {apply['sample']:,} accounts "
          f"{apply['sample_s']:.1f} s -> {apply['extrapolated_s']:,.0f} s at {m.n_acc:,}   ratio "
          f"{m.apply_ratio:.4f} ({1 / m.apply_ratio:,.0f}x faster, prepare + build)   values equal: "
          f"{apply['equal']}/{len(APPLY_COLUMNS)}")
    span = f"{len(dates)} as-of dates ({dates[0].date()} .. {dates[-1].date()})"
    if m.dates_s is None:
        print(f"  {span} skipped: the build would need about {m.need_gb:.0f} GB and {m.free_gb:.0f} GB is "
              "available (run it on a machine with more memory)")
    else:
        print(f"  {span} {m.read_s + m.prep_s + m.dates_s:.1f} s (read and prepare once, build "
              f"{m.dates_s:.1f} s), {m.many_rows:,} rows   ratio to one date {m.dates_ratio:.2f} (build alone "
              f"{m.dates_build_ratio:.1f}: {m.many_rows / m.rows:.1f} x the rows, "
              f"{m.many_rows * (m.features + 2) * 8 / 1e9:.1f} GB of output)")
    verdict = {True: "met", False: "MISSED", None: "not run"}
    print(f"  goals: full catalog <= {GOAL_REF_RATIO} x reference {verdict[m.ref_ratio <= GOAL_REF_RATIO]}, "
          f"<= {GOAL_GB:.0f} GB {verdict[peak['peak_gb'] <= GOAL_GB]}, "
          f">= {GOAL_APPLY_SPEEDUP:.0f}x faster than apply {verdict[1 / m.apply_ratio >= GOAL_APPLY_SPEEDUP]}, "
          f"{len(dates)} dates <= {GOAL_DATES_RATIO:.0f} x one "
          f"{verdict[None if m.dates_ratio is None else m.dates_ratio <= GOAL_DATES_RATIO]}")


def _figures(m: SimpleNamespace, months: int) -> dict:
    """The run's one line of JSON."""
    def r(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    return {"bench": "features", "accounts": m.n_acc, "months": months, "bills": m.bills, "payments": m.payments,
            "as_of": str(m.as_of.date()), "features": m.features, "rows": m.rows,
            "read_s": r(m.read_s, 2), "prepare_s": r(m.prep_s, 2),
            "build_s": r(m.build_s, 2), "compile_s": r(m.compile_s, 2),
            "wall_s": r(m.wall, 2), "rows_per_s": round((m.bills + m.payments) / m.wall),
            "peak_gb": r(m.peak["peak_gb"], 2),
            "reference_s": r(m.ref["total_s"], 2), "reference_read_s": r(m.ref["read_s"], 2),
            "reference_query_s": r(m.ref["query_s"], 2), "ratio": r(m.ref_ratio, 3),
            "equal_columns": m.equal, "apply_sample": m.apply["sample"], "apply_sample_s": r(m.apply["sample_s"], 2),
            "apply_extrapolated_s": r(m.apply["extrapolated_s"], 1), "apply_ratio": r(m.apply_ratio, 5),
            "apply_equal_columns": m.apply["equal"], "dates": len(m.dates),
            "dates_s": r(m.dates_s, 2), "dates_ratio": r(m.dates_ratio, 2),
            "dates_build_ratio": r(m.dates_build_ratio, 2), "dates_need_gb": r(m.need_gb, 1)}


# ---------------------------------------------------------------------------------------------- data


def last_month_end(tables: Tables) -> pd.Timestamp:
    """The last month end on or before the extraction date: the as-of date of a monthly scoring run."""
    return pd.offsets.MonthEnd().rollback(tables.extraction_date).normalize()


def month_ends(last: pd.Timestamp, count: int, prep: Prepared) -> list[pd.Timestamp]:
    """Up to `count` month ends ending at `last`, none before the first day with data."""
    ends = pd.date_range(end=last, periods=max(count, 1), freq="ME")
    first = pd.Timestamp(np.datetime64(int(prep.first_day), "D"))
    return [d for d in ends if d >= first] or [last]


def multi_date_need_gb(prep: Prepared, dates: list[pd.Timestamp], features: int) -> float:
    """Memory the multi-date build adds: about 3 x its output frame (kernel outputs, the per-feature
    gathers and the frame itself; measured 2.9 x at 200,000 accounts x 12 dates)."""
    days = to_days(np.array([d.to_datetime64() for d in dates]))
    rows = int((prep.open_day[None, :] <= days[:, None]).sum())
    return MULTI_DATE_FACTOR * rows * (features + 2) * 8 / 1e9


def available_gb() -> float:
    """MemAvailable of /proc/meminfo: what can be allocated without pushing others' processes out."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 / 1e9
    return float("inf")


def warm_up(data: Path) -> None:
    """Read, check and build the first accounts: every compiled kernel is compiled (or loaded from numba's
    cache) here, once, and not inside the timed run."""
    ids = np.sort(pq.read_table(find_table(data, "accounts"), columns=["account_id"])["account_id"].to_numpy())
    few = load_tables(data, account_range=(int(ids[0]), int(ids[min(WARMUP_ACCOUNTS, len(ids) - 1)]) + 1))
    build_features(few, [last_month_end(few)])


# ---------------------------------------------------------------------------------------------- peak memory


def _peak_in_child(data: Path) -> dict:
    """Read + build in a fresh process; its peak resident memory is the builder's, nothing else's."""
    proc = subprocess.run([sys.executable, "-m", "bench.features", "--peak", str(data)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the peak-memory run failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _peak_main(data: Path) -> None:
    t0 = time.perf_counter()
    tables = load_tables(data)
    t1 = time.perf_counter()
    build_features(tables, [last_month_end(tables)])
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({"peak_gb": peak / 1e9, "read_s": t1 - t0, "build_s": t2 - t1}))


# ---------------------------------------------------------------------------------------------- reference


def _load_reference(path: Path):
    if not path.is_file():
        raise SystemExit(f"error: the reference {path} is not there; the shared folder belongs beside the "
                         "project (../shared), or pass --reference PATH")
    spec = importlib.util.spec_from_file_location("subset_polars", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_reference(reference, data: Path, as_of: pd.Timestamp) -> dict:
    """The reference query on polars frames read from the same Parquet; times with and without the read."""
    import polars as pl

    def read(name: str) -> pl.DataFrame:
        path = data / name
        parts = sorted(str(p) for p in path.rglob("*.parquet")) if path.is_dir() else [str(data / f"{name}.parquet")]
        return pl.read_parquet(parts)

    with Timer() as t_read:
        frames = {name: read(name) for name in ("accounts", "bills", "payments", "limits")}
    with Timer() as t_query:
        out = reference.subset(frames["accounts"], frames["bills"], frames["payments"], frames["limits"],
                               date(as_of.year, as_of.month, as_of.day))
    return {"frame": out, "rows": out.height, "read_s": t_read.seconds, "query_s": t_query.seconds,
            "total_s": t_read.seconds + t_query.seconds}


def compare(project: pd.DataFrame, reference, columns) -> tuple[int, list[str]]:
    """Columns equal to 1e-9 (NaN where the reference is null) on the reference's rows: the project's
    accounts with a bill due by T. Returns the count of equal columns and a line per differing one."""
    mine = project[project["bills_due"] > 0].sort_values("account_id")
    ref_ids = reference["account_id"].to_numpy()
    if not np.array_equal(mine["account_id"].to_numpy(), ref_ids):
        only_mine = np.setdiff1d(mine["account_id"].to_numpy(), ref_ids)
        only_ref = np.setdiff1d(ref_ids, mine["account_id"].to_numpy())
        return 0, [f"rows differ: {len(only_mine):,} accounts only in the project (e.g. {only_mine[:3].tolist()}), "
                   f"{len(only_ref):,} only in the reference (e.g. {only_ref[:3].tolist()})"]
    lines = []
    for name in columns:
        a = mine[name].to_numpy(np.float64)
        b = reference[name].cast(float).to_numpy()
        same = np.where(np.isnan(b), np.isnan(a), np.abs(a - b) <= TOLERANCE)
        if not same.all():
            bad = np.flatnonzero(~same)
            examples = ", ".join(f"account {ref_ids[i]}: {a[i]:g} vs {b[i]:g}" for i in bad[:3])
            lines.append(f"{name} in {len(bad):,} of {len(b):,} accounts ({examples})")
    return len(columns) - len(lines), lines


# ---------------------------------------------------------------------------------------------- apply baseline

APPLY_COLUMNS = ("lag1_n6", "worst_dpd_n12", "paid_ratio_n6", "util_n3")


def _apply_baseline(tables: Tables, project: pd.DataFrame, as_of: pd.Timestamp, sample: int, seed: int) -> dict:
    """Four columns by a per-account pandas function over a random sample of accounts, timed and checked."""
    ids = np.sort(np.random.default_rng(seed).choice(tables.accounts["account_id"].to_numpy(), sample,
                                                     replace=False))
    pick = {name: tables.table(name)[lambda f: f["account_id"].isin(ids)]
            for name in ("accounts", "bills", "payments", "limits")}
    with Timer() as t:
        out = apply_features(pick["accounts"], pick["bills"], pick["payments"], pick["limits"], as_of)
    mine = project.set_index("account_id").loc[out.index]
    equal = 0
    for name in APPLY_COLUMNS:
        a, b = mine[name].to_numpy(np.float64), out[name].to_numpy(np.float64)
        equal += bool(np.where(np.isnan(b), np.isnan(a), np.abs(a - b) <= TOLERANCE).all())
    return {"sample": sample, "sample_s": t.seconds, "equal": equal,
            "extrapolated_s": t.seconds / sample * len(tables.accounts)}


def apply_features(accounts: pd.DataFrame, bills: pd.DataFrame, payments: pd.DataFrame, limits: pd.DataFrame,
                   as_of: pd.Timestamp) -> pd.DataFrame:
    """lag1_n6, worst_dpd_n12, paid_ratio_n6 and util_n3 as of T, one account at a time (the naive way)."""
    pays = dict(tuple(payments[payments["payment_date"] <= as_of].groupby("account_id")))
    lims = dict(tuple(limits.groupby("account_id")))
    revolving = set(accounts.loc[accounts["product"] == "revolving", "account_id"])
    no_pays = payments.iloc[:0]

    def one(g: pd.DataFrame) -> pd.Series:
        acc = g.name
        b = g[g["due_date"] <= as_of].sort_values(["due_date", "statement_date", "bill_id"], ascending=False)
        p = pays.get(acc, no_pays).sort_values("payment_date", kind="stable")
        cum = p.groupby("bill_id")["amount"].cumsum()
        need = p["bill_id"].map(b.set_index("bill_id")["min_due"])
        reached = p[cum >= need - 1e-9].groupby("bill_id")["payment_date"].min()
        paid = p.groupby("bill_id")["amount"].sum()
        conv = b["converted_date"].where(b["converted_date"] <= as_of)
        reached_b = pd.Series(reached.reindex(b["bill_id"]).to_numpy(), index=b.index)
        reached_b = reached_b.where(b["min_due"] > 1e-9, b["due_date"])
        settled = pd.concat([reached_b, conv], axis=1).min(axis=1)
        lag = (settled - b["due_date"]).dt.days
        depth = lag.clip(lower=0).where(settled.notna(), (as_of - b["due_date"]).dt.days)
        paid_b = pd.Series(paid.reindex(b["bill_id"]).to_numpy(), index=b.index).fillna(0.0)
        ratio = (np.minimum(paid_b, b["amount_due"]) / b["amount_due"]).where(
            (b["amount_due"] > 0) & conv.isna())
        stmts = b[b["parent_bill_id"].isna()] if acc in revolving else b.iloc[:0]
        lim = lims.get(acc)
        utils = []
        for _, s in stmts.head(3).iterrows():
            in_force = lim[lim["effective_date"] <= s["statement_date"]] if lim is not None else lim
            limit = in_force["credit_limit"].iloc[-1] if in_force is not None and len(in_force) else np.nan
            utils.append(s["amount_due"] / limit)
        return pd.Series({
            "lag1_n6": float((lag.head(6) == 1).sum()),
            "worst_dpd_n12": depth.head(12).max(),
            "paid_ratio_n6": ratio.head(6).mean(),
            "util_n3": np.mean(utils) if utils else np.nan,
        })

    due = bills[bills["due_date"] <= as_of]  # the reference's rows: accounts with a bill due by T
    return bills[bills["account_id"].isin(due["account_id"])].groupby("account_id").apply(one)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peak":
        _peak_main(Path(sys.argv[2]))
    else:
        print("usage: python -m bench features [options]  (this module's --peak DATA is for the benchmark itself)",
              file=sys.stderr)
        sys.exit(2)
