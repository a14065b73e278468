"""Generate a synthetic dataset on disk: chunks of customers in parallel, Parquet part files, atomic swap.

A dataset directory holds accounts/, bills/, payments/, limits/, truth/ (part files, one per chunk, in
account order), macro.parquet and _manifest.json, which states the tables' control totals (see
features.extract_manifest). The tables hold a warehouse's history: `history_months` before the `months`
as-of months, whose month ends the truth covers. It is written into a temporary sibling and renamed into
place at the end, so an interrupted run leaves nothing half-written at the output path.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.extract_manifest import FILE_NAME, control_totals
from simulation.book import Book, book, chunk_bounds
from simulation.macro import SCENARIOS, first_world_month, macro_table
from simulation.params import DEFAULT_PARAMS, WorldParams
from simulation.world import MAX_MONTHS, simulate_chunk

TABLES = ("accounts", "bills", "payments", "limits", "truth")
MANIFEST = FILE_NAME  # the extract manifest's name: the dataset states its own control totals


class GenerateError(ValueError):
    """A request the generator cannot honour; the message says what to change."""


@dataclass(frozen=True)
class Request:
    accounts: int
    months: int
    seed: int = 42
    scenario: str = "baseline"
    shock_month: int | None = None  # as-of month of the shock; default: the middle one
    chunk_accounts: int = 50_000
    workers: int = 2
    # the warehouse's history before the first as-of month: the longest bill window (36), so every window is
    # full of recorded history at the first as-of month
    history_months: int = 36

    def checked(self) -> Request:
        if self.accounts < 1:
            raise GenerateError(f"--accounts must be at least 1, got {self.accounts}")
        if self.history_months < 0:
            raise GenerateError(f"--history-months must be at least 0, got {self.history_months}")
        if not 1 <= self.months <= MAX_MONTHS - self.history_months:
            raise GenerateError(f"--months must be between 1 and {MAX_MONTHS - self.history_months} "
                                f"(with {self.history_months} history months), got {self.months}")
        if self.scenario not in SCENARIOS:
            raise GenerateError(f"--scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        shock = self.months // 2 if self.shock_month is None else self.shock_month
        if not 0 <= shock < self.months:
            raise GenerateError(f"--shock-month must be within 0..{self.months - 1}, got {shock}")
        if self.chunk_accounts < 1 or self.workers < 1:
            raise GenerateError("--chunk-accounts and --workers must be at least 1")
        return Request(self.accounts, self.months, self.seed, self.scenario, shock, self.chunk_accounts,
                       self.workers, self.history_months)


def code_version() -> str:
    """A hash of the simulator's source: datasets made by other code are told apart."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _arrow(df: pd.DataFrame | pa.Table) -> pa.Table:
    """Arrow with calendar dates as date32 and probabilities as float32, as the contract writes."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.date32()))
        elif f.name.startswith("p_") and pa.types.is_floating(f.type):
            fields.append(pa.field(f.name, pa.float32()))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields))


def _write(table: pd.DataFrame | pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_arrow(table), path, compression="snappy")


def _run_chunk(params: WorldParams, bk: Book, req: Request, i: int, lo: int, hi: int, tmp: Path):
    chunk = simulate_chunk(params, bk, lo, hi, history=req.history_months, months=req.months, seed=req.seed,
                           scenario=req.scenario, shock_month=req.shock_month)
    counts = {}
    for name in TABLES:
        df = getattr(chunk, name)
        _write(df, tmp / name / f"part-{i:05d}.parquet")
        counts[name] = len(df)
    charged = len(chunk.accounts) - chunk.accounts.column("charge_off_date").null_count
    return i, counts, chunk.profile, charged


def generate(out: Path, req: Request, params: WorldParams = DEFAULT_PARAMS, *, progress: bool = True) -> dict:
    """Write the dataset to `out` (replacing an earlier generated dataset there) and return its summary."""
    req = req.checked()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise GenerateError(f"{out} exists and is not a generated dataset (no {MANIFEST}): "
                            "choose an empty or new --out directory")
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        bk = book(req.accounts, params, req.history_months + req.months)
        bounds = chunk_bounds(bk, req.accounts, req.chunk_accounts)
        counts = dict.fromkeys(TABLES, 0)
        profiles, charged = [], 0
        bar = _progress(len(bounds), progress)
        if req.workers == 1 or len(bounds) == 1:
            results = (_run_chunk(params, bk, req, i, lo, hi, tmp) for i, (lo, hi) in enumerate(bounds))
            for res in results:
                charged += _collect(res, counts, profiles, bar)
        else:
            with ProcessPoolExecutor(req.workers, mp_context=get_context("fork")) as pool:
                futures = [pool.submit(_run_chunk, params, bk, req, i, lo, hi, tmp)
                           for i, (lo, hi) in enumerate(bounds)]
                for fut in as_completed(futures):
                    charged += _collect(fut.result(), counts, profiles, bar)
        bar.close()
        first = first_world_month(params, req.history_months)
        macro = macro_table(params, req.scenario, req.history_months + req.months,
                            req.history_months + req.shock_month, first)
        _write(macro, tmp / "macro.parquet")
        counts["macro"] = len(macro)
        profile = _profile(profiles)
        summary = {
            "request": asdict(req),
            "code": code_version(),
            "customers": int(bk.n_customers),
            "rows": counts,
            "control_totals": control_totals(tmp),  # read back from the written parts, as a user's check will
            "charged_off_accounts": charged,
            "history_from": str(macro["month"].iloc[0].date()),
            "first_month": str(macro["month"].iloc[req.history_months].date()),
            "as_of_from": str(macro["published_date"].iloc[req.history_months].date()),
            "extraction_date": str(macro["published_date"].iloc[-1].date()),
            "seconds": round(time.perf_counter() - t0, 2),
            "profile": profile.to_dict(orient="list"),
            "accounts": counts["accounts"],
            "open_accounts_at_end": int(profile["open_accounts"].iloc[-1]),
        }
        (tmp / MANIFEST).write_text(json.dumps(summary, indent=1))
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


def _collect(res, counts, profiles, bar) -> int:
    _, c, prof, charged = res
    for k, v in c.items():
        counts[k] += v
    profiles.append(prof)
    bar.update(1)
    return charged


def _profile(profiles: list[pd.DataFrame]) -> pd.DataFrame:
    p = pd.concat(profiles).groupby("month", as_index=False).sum()
    p["dpd30_rate"] = p["dpd30_accounts"] / p["open_accounts"].clip(lower=1)
    p["dpd90_rate"] = p["dpd90_accounts"] / p["open_accounts"].clip(lower=1)
    return p


def _swap(tmp: Path, out: Path) -> None:
    """Put the finished dataset in place; the old one (if any) is removed only after the rename."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="simulating chunks", unit="chunk", disable=not enabled or total < 2)


def profile_summary(summary: dict) -> dict:
    """The realism figures over the as-of months: mean month-end 30+ / 90+ rates, short lags per 30-DPD bill."""
    p = pd.DataFrame(summary["profile"])
    p = p[p["month"] >= 0]
    settled = p
    req = summary["request"]
    out = {
        "dpd30_rate": float(settled["dpd30_rate"].mean()),
        "dpd90_rate": float(settled["dpd90_rate"].mean()),
        "short_lag_per_dpd30_bill": float(p["short_lag_bills"].sum() / max(p["dpd30_bills"].sum(), 1)),
    }
    if req["scenario"] == "shock":
        shock = p[p["month"] >= req["shock_month"]]
        out["dpd30_rate_shock_months"] = float(shock["dpd30_rate"].mean())
    return out


def format_summary(summary: dict, out: Path) -> str:
    req, rows = summary["request"], summary["rows"]
    prof = profile_summary(summary)
    total = sum(rows.values())
    lines = [
        f"wrote {out}: {req['scenario']} world, seed {req['seed']}, {req['months']} as-of months "
        f"({summary['first_month']} .. {summary['extraction_date']}) after {req['history_months']} months of history "
        f"(from {summary['history_from']})",
        f"  {summary['open_accounts_at_end']:,} accounts open at the end; {summary['accounts']:,} accounts of "
        f"{summary['customers']:,} customers over the years; "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items()),
        f"  {summary['seconds']:.1f} s, {total / max(summary['seconds'], 1e-9):,.0f} rows/s",
        f"  month-end 30+ DPD {prof['dpd30_rate']:.2%} of open accounts, 90+ DPD {prof['dpd90_rate']:.2%} "
        f"(as-of months); {prof['short_lag_per_dpd30_bill']:.1f} bills paid 1-2 days late per bill reaching "
        f"30 DPD; {summary['charged_off_accounts']:,} accounts charged off",
    ]
    if "dpd30_rate_shock_months" in prof:
        lines.append(f"  shock from month {req['shock_month']}: 30+ DPD {prof['dpd30_rate_shock_months']:.2%} "
                     "over the shock months")
    return "\n".join(lines)


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


__all__ = ["GenerateError", "Request", "format_summary", "generate", "profile_summary", "read_manifest"]
