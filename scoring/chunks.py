"""Splitting a portfolio into chunks of accounts that can be scored apart.

A chunk is a range of account ids [lo, hi). Features look across a customer's accounts (worst DPD on the
other accounts, active cash loans), so a cut never separates two accounts of one customer: cuts are placed
only where every customer lies wholly on one side. Scores then do not depend on the chunk size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.contract import (
    NULL_HINT,
    SCHEMAS,
    ContractError,
    Problem,
    find_table,
    missing_columns,
    part_files,
    read_arrow,
)
from features.extraction import EVENT_COLUMNS, Extraction, placeholder_mask, resolve

DATE_COLUMNS = {"accounts": ("open_date",), "bills": ("statement_date", "due_date"),
                "payments": ("payment_date",), "limits": ("effective_date",)}  # where the data's first day is
OPTIONAL = ("macro",)


@dataclass(frozen=True)
class Portfolio:
    """What the parent process knows before any chunk is read: ids, and the data's first and last day."""

    account_id: np.ndarray  # sorted
    customer_id: np.ndarray  # aligned with account_id
    first_day: pd.Timestamp
    extraction: Extraction | None  # None: the data holds no event
    boundaries: np.ndarray | None = None  # account ids where the bills table's row groups start


def survey(data_dir: Path, stated: Extraction | None = None) -> Portfolio:
    """Account and customer ids, the data's first day and its extraction date (stated, or derived from event
    dates), reading only the columns needed and, where Parquet statistics tell, not even those."""
    found = _tables(data_dir)
    first_day, extraction = _dates(found, stated)
    ids = _read(found, "accounts", _account_ids)
    account = ids.column("account_id").to_numpy().astype(np.int64)
    customer = ids.column("customer_id").to_numpy().astype(np.int64)
    order = np.argsort(account, kind="stable")
    starts = _span_starts(found["bills"]) if found["bills"].suffix != ".csv" else None
    return Portfolio(account[order], customer[order], first_day, extraction, starts)


def span(data_dir: Path, stated: Extraction | None = None) -> tuple[pd.Timestamp, Extraction | None]:
    """The data's first day and its extraction date (stated, or derived from event dates) without reading any
    id: from the Parquet footers where their statistics tell. What a plan needs when the ids are read by a
    cluster, not by the process that plans."""
    return _dates(_tables(data_dir), stated)


def _tables(data_dir: Path) -> dict[str, Path | None]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError([Problem("data", "", f"directory {data_dir} does not exist",
                                     hint="Pass the folder holding accounts, bills, payments and limits.")])
    found = {name: find_table(data_dir, name) for name in (*DATE_COLUMNS, *OPTIONAL)}
    lacking = [name for name, path in found.items() if path is None and name not in OPTIONAL]
    if lacking:
        raise ContractError([Problem(name, "", f"is not found in {data_dir} (looked for {name}.parquet, {name}/, "
                                     f"{name}.csv)", hint=f"Write the {name} table there, or check the folder name.")
                             for name in lacking])
    return found


def _dates(found: dict[str, Path | None], stated: Extraction | None) -> tuple[pd.Timestamp, Extraction | None]:
    lows, events = [], []
    for name in DATE_COLUMNS:
        lows += [lo for column in DATE_COLUMNS[name] if (lo := _read(found, name, _span, column)[0]) is not None]
        if stated is None:  # derived from the events: a stated date needs none of them
            events += [hi for column in EVENT_COLUMNS[name]
                       if (hi := _read(found, name, _latest_event, column)) is not None]
    return pd.Timestamp(min(lows)) if lows else pd.NaT, resolve(stated, max(events) if events else None)


def _read(found: dict[str, Path | None], name: str, read, *args):
    """read(path, *args) of table `name`, any failure a ContractError naming the file."""
    path = found[name]
    try:
        return read(path, *args)
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError([Problem(name, "", f"cannot be read from {path}: {reason}",
                                     hint="Re-export it as Parquet (or CSV with a header row); "
                                          "`python -m features validate DIR` checks every table.")]) from None


def _account_ids(path: Path) -> pa.Table:
    """The accounts' ids, refused as the contract would when a column is missing or an id is null."""
    table = read_arrow(path) if path.suffix == ".csv" else None
    parts = part_files(path) if path.is_dir() else [path]
    names = table.column_names if table is not None else [n for part in parts for n in pq.read_schema(part).names]
    missing = missing_columns(pd.DataFrame(columns=names), SCHEMAS["accounts"])
    if missing is not None:
        raise ContractError([dataclasses.replace(missing, source=str(path))])
    table = table if table is not None else table_columns(path, ("account_id", "customer_id"))
    nulls = [Problem("accounts", c, "is null", table.column(c).null_count, len(table), hint=NULL_HINT,
                     source=str(path)) for c in ("account_id", "customer_id") if table.column(c).null_count]
    if nulls:
        raise ContractError(nulls)
    return table.select(["account_id", "customer_id"])


def _span(path: Path, column: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """(first, last) date of a column: from Parquet statistics when they tell, else read (CSV, or none)."""
    span = _span_from_statistics(path, column) if path.suffix != ".csv" else None
    if span is None:
        table = table_columns(path, (column,))
        if column not in table.column_names:
            return None, None
        mm = pc.min_max(table.column(column).cast(pa.timestamp("s")))
        span = (mm["min"].as_py(), mm["max"].as_py())
    return tuple(None if v is None else _wall(v) for v in span)


def _latest_event(path: Path, column: str) -> pd.Timestamp | None:
    """The column's last date that is not a placeholder (features.extraction): read only when the statistics'
    maximum is one, or lies after today."""
    last = _span(path, column)[1]
    if last is None or (not placeholder_mask(np.array([last.to_datetime64()]))[0] and last <= pd.Timestamp.today()):
        return last
    values = table_columns(path, (column,)).column(column).cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
    values = values[~np.isnat(values) & ~placeholder_mask(values)]
    return pd.Timestamp(values.max()) if len(values) else None


def _span_starts(path: Path) -> np.ndarray | None:
    """First account id of every row group of a Parquet table (from statistics), or None if unknown."""
    stats = _row_group_stats(path, "account_id")
    return None if stats is None else np.unique(np.asarray([lo for lo, _ in stats], dtype=np.int64))


def _span_from_statistics(path: Path, column: str) -> tuple[object, object] | None:
    """(min, max) of a Parquet column without reading it; None if the statistics do not tell."""
    stats = _row_group_stats(path, column)
    if stats is None:
        return None
    if not stats:
        return None, None
    days = [(_wall(lo), _wall(hi)) for lo, hi in stats]  # parts may hold dates, timestamps, time zones
    return min(lo for lo, _ in days), max(hi for _, hi in days)


def _wall(value) -> pd.Timestamp:
    """A date or timestamp statistic as a naive timestamp of its wall time (as the contract reads dates)."""
    return pd.Timestamp(value).tz_localize(None)


def _row_group_stats(path: Path, column: str) -> list[tuple[object, object]] | None:
    """(min, max) of a Parquet column in every non-empty row group, from the footers alone; None if a
    row group has no statistics (the column must then be read)."""
    out = []
    for part in part_files(path) if path.is_dir() else [path]:
        meta = pq.ParquetFile(part).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if column not in names:
            continue
        j = names.index(column)
        for g in range(meta.num_row_groups):
            chunk = meta.row_group(g).column(j)
            if chunk.num_values == 0:
                continue
            if chunk.statistics is None or not chunk.statistics.has_min_max:
                return None
            out.append((chunk.statistics.min, chunk.statistics.max))
    return out


def table_columns(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """Those of `columns` the table holds, and nothing else read (a CSV is read whole, then selected)."""
    if path.suffix == ".csv":
        table = read_arrow(path)
        return table.select([c for c in columns if c in table.column_names])
    import pyarrow.dataset as ds

    dataset = ds.dataset([str(p) for p in part_files(path)] if path.is_dir() else [str(path)], format="parquet")
    return dataset.to_table(columns=[c for c in columns if c in dataset.schema.names])


def plan_chunks(account_id: np.ndarray, customer_id: np.ndarray, size: int,
                boundaries: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Account-id ranges [lo, hi) of about `size` accounts each, never splitting a customer.

    A cut after position i is safe when no customer has accounts on both sides: the last position of every
    customer seen so far is <= i (a running maximum). Customers spread thinly over the id range leave few
    safe cuts, and the chunks grow accordingly (correct first, then small). `boundaries` (account ids where
    the largest table's row groups start) pull a cut to the nearest one within half a chunk, so that a chunk
    decodes whole row groups rather than parts of two.
    """
    n = len(account_id)
    if n == 0:
        return []
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 account, got {size}")
    codes = np.unique(customer_id, return_inverse=True)[1]
    last = np.zeros(codes.max() + 1, dtype=np.int64)
    np.maximum.at(last, codes, np.arange(n))
    reach = np.maximum.accumulate(last[codes])
    safe = np.flatnonzero(reach == np.arange(n))  # cut after these positions
    snap = np.array([], dtype=np.int64) if boundaries is None else \
        np.append(np.searchsorted(account_id, np.asarray(boundaries, dtype=np.int64)) - 1, n - 1)  # cut before
    bounds, start = [], 0
    while start < n:
        want = start + size - 1
        near = snap[(snap >= start + size // 2) & (snap <= start + size + size // 2)]
        if len(near):
            want = int(near[np.argmin(np.abs(near - want))])
        k = np.searchsorted(safe, want, side="left")
        end = safe[k] if k < len(safe) else n - 1
        bounds.append((start, end + 1))
        start = end + 1
    edges = [int(account_id[s]) for s, _ in bounds] + [int(account_id[-1]) + 1]
    return list(pairwise(edges))
