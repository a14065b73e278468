"""A monthly bureau-style file, long or wide, read by a TOML layout and written as the contract's tables.

Why: a risk team's monthly data comes as one file, either long (one row per account and month) or wide (one
row per account, a column per month for each of status, statement and paid amount), with its own column
names and status codes. The layout file declares all of it once; `features.adapters.from_monthly` does the
mapping; the command `python -m features adapt monthly` writes the result as a data folder that train.py and
score.py read like any other.

A layout (every key optional but [codes] for a file with codes of its own):

    due_day = 25                  # and min_due_rate, min_due_floor, product: see MonthlyConfig
    [codes]                       # status code -> months past due, or a meaning (features.adapters.MEANINGS)
    "-2" = "no_use"
    "-1" = "paid_in_full"
    "0" = "minimum_paid"
    "1" = 1                       # ... up to the largest, which reads "that many or more"
    [wide]                        # a wide file: each list runs over the months, oldest first
    account_id = "ID"
    months = ["2005-04", "2005-05", "2005-06"]
    status = ["PAY_4", "PAY_3", "PAY_2"]
    bill_amount = ["BILL_AMT3", "BILL_AMT2", "BILL_AMT1"]
    paid_amount = ["PAY_AMT3", "PAY_AMT2", "PAY_AMT1"]
    credit_limit = "LIMIT_BAL"    # one column for every month, or a list
    [long]                        # a long file whose columns have other names: contract name = file's name
    account_id = "acct"
"""
from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.adapters import DEFAULT_CODES, MONTHLY, MonthlyConfig
from features.contract import CORE_TABLES, Tables, read_table
from features.extract_manifest import control_totals

PER_MONTH = ("status", "bill_amount", "paid_amount")  # a wide file's lists, one column per month
PER_ACCOUNT = ("account_id", "customer_id", "product")


class LayoutError(ValueError):
    """A layout file that cannot be read or does not fit the data file; the message says what to change."""


@dataclass(frozen=True)
class Layout:
    config: MonthlyConfig = field(default_factory=MonthlyConfig)
    wide: dict = field(default_factory=dict)
    long: dict = field(default_factory=dict)


def load_layout(path: Path | None) -> Layout:
    """The layout of a TOML file (the defaults when None), checked as far as it can be without the data."""
    if path is None:
        return Layout()
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LayoutError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(f"{path} is not valid TOML: {exc}") from None
    settings = {f.name for f in fields(MonthlyConfig)} - {"codes"}
    unknown = sorted(set(raw) - settings - {"codes", "wide", "long"})
    if unknown:
        raise LayoutError(f"{path}: unknown key(s) {', '.join(unknown)}; known: codes, wide, long, "
                          f"{', '.join(sorted(settings))}")
    codes = raw.get("codes", DEFAULT_CODES)
    try:
        config = MonthlyConfig(codes=dict(codes), **{k: v for k, v in raw.items() if k in settings})
    except (TypeError, ValueError) as exc:
        raise LayoutError(f"{path}: {exc}") from None
    wide, long = dict(raw.get("wide", {})), dict(raw.get("long", {}))
    if wide and long:
        raise LayoutError(f"{path}: a file is wide or long, not both: keep [wide] or [long]")
    _check_wide(wide, path)
    return Layout(config, wide, long)


def _check_wide(wide: dict, path: Path) -> None:
    if not wide:
        return
    missing = [k for k in ("account_id", "months", "status") if k not in wide]
    if missing:
        raise LayoutError(f"{path}: [wide] needs {', '.join(missing)}")
    n = len(wide["months"])
    uneven = [k for k in PER_MONTH if k in wide and len(wide[k]) != n]
    if isinstance(wide.get("credit_limit"), list) and len(wide["credit_limit"]) != n:
        uneven.append("credit_limit")
    if uneven:
        raise LayoutError(f"{path}: [wide] {', '.join(uneven)} must list one column for each of the {n} months")


def read_monthly(path: Path, layout: Layout) -> pd.DataFrame:
    """The file's rows in the adapter's long form (features.adapters.MONTHLY's columns)."""
    frame = read_table(Path(path), "monthly")
    if layout.wide:
        return _long_from_wide(frame, layout.wide, path)
    renamed = frame.rename(columns={theirs: ours for ours, theirs in layout.long.items()})
    absent = [c.name for c in MONTHLY.columns if c.required and c.name not in renamed]
    if absent:
        raise LayoutError(f"{path} lacks the column(s) {', '.join(absent)} of a long monthly file (it has "
                          f"{', '.join(map(str, frame.columns[:12]))}): name them in the layout's [long], or "
                          "describe a wide file in [wide]")
    return renamed


def _long_from_wide(frame: pd.DataFrame, wide: dict, path: Path) -> pd.DataFrame:
    """One row per account and month from one row per account: each field's columns stacked month by month."""
    limit = wide.get("credit_limit")
    named = [wide["account_id"], *(c for k in PER_MONTH for c in wide.get(k, [])),
             *([limit] if isinstance(limit, str) else limit or []),
             *(wide[k] for k in ("customer_id", "product") if k in wide)]
    absent = [c for c in named if c not in frame.columns]
    if absent:
        raise LayoutError(f"{path} lacks the column(s) {', '.join(absent)} that the layout's [wide] names")
    months, n = wide["months"], len(frame)
    out = {"account_id": np.tile(frame[wide["account_id"]].to_numpy(), len(months)),
           "month": np.repeat(np.asarray(months, dtype=object), n)}
    for k in (*PER_MONTH, "credit_limit"):
        columns = wide.get(k)
        if columns is None:
            out[k] = np.full(n * len(months), np.nan)
        elif isinstance(columns, str):
            out[k] = np.tile(frame[columns].to_numpy(), len(months))
        else:
            out[k] = np.concatenate([frame[c].to_numpy() for c in columns])
    for k in ("customer_id", "product"):
        if k in wide:
            out[k] = np.tile(frame[wide[k]].to_numpy(), len(months))
    return pd.DataFrame(out)


def last_month_end(monthly: pd.DataFrame) -> str:
    """The last day of the latest month reported: the extract's extraction date (a month's report covers it
    whole)."""
    last = pd.to_datetime(monthly["month"].astype(str), format="mixed").max()
    return (last + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d")


def write_tables(tables: Tables, out: Path, extraction_date: str) -> None:
    """The contract's tables as Parquet files in a new folder `out`, with the extract's manifest (its
    extraction date and control totals), all or nothing: written beside it, then renamed into place, so a
    failed run leaves nothing at `out`."""
    with new_folder(Path(out)) as tmp:
        for name in CORE_TABLES:
            pq.write_table(_dated(getattr(tables, name)), tmp / f"{name}.parquet", compression="snappy")
        manifest = {"extraction_date": extraction_date, "control_totals": control_totals(tmp, CORE_TABLES)}
        (tmp / "_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


@contextmanager
def new_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out` to write into, renamed to `out` when the block ends without error and
    removed otherwise: a reader never sees a half-written folder. `out` must be new or empty."""
    if out.exists() and any(out.iterdir()):
        raise LayoutError(f"--out {out} exists and is not empty: name a new folder")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        yield tmp
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _dated(frame: pd.DataFrame) -> pa.Table:
    """Arrow with calendar dates as date32, as the contract's files hold them."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.cast(pa.schema([pa.field(f.name, pa.date32()) if pa.types.is_timestamp(f.type) else f
                                 for f in table.schema]))
