"""An extract's own manifest, and the control totals that tell a complete transfer from a truncated one.

Why: the classic nightly failure is a transfer cut short — a part file missing, a copy stopped halfway —
and the tables that remain still load cleanly, only with fewer rows. An extract may come with a
manifest stating what it held; when it does, the tables are reconciled against it before any heavy work.

The manifest is ``_manifest.json`` in the extract's folder: one JSON object. Fields other than these are
ignored (the synthetic generator's summary is such a manifest), and all are optional:

    "extraction_date": "2024-12-31"          the day the extract was taken, strictly YYYY-MM-DD
    "as_of_from": "2023-01-31"               the first as-of day whose history is complete: a warehouse holds
                                             years of history before the months a model may be trained on, and
                                             rows of earlier days would see shorter records (training's default
                                             first as-of day)
    "control_totals": {                      per table; tables not named are not checked
        "bills":    {"rows": 18206731, "sums": {"amount_due": 912345678901, "min_due": 45678901234}},
        "payments": {"rows": 19778700, "sums": {"amount": 812345678901}},
        "accounts": {"rows": 1000000}}

``rows`` is the table's row count; ``sums`` (optional, any of the table's SUMMED columns) are exact
integers in cents: the sum over rows of round(value * 100), the product taken in float64 and rounded half
to even, with null (and NaN) values counting 0. Rounding each value to an integer before adding makes the
sum exact, so it does not depend on the order of addition nor on how rows are split into part files; and
an amount to the cent gives the same cents whether it was stored as a double (Parquet) or printed as text
(CSV).

A malformed field is refused rather than skipped: a misspelt table or column would otherwise switch its
check off without anyone noticing.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numba import njit

from features.contract import ALL_TABLES, SCHEMAS, ContractError, Problem, Tables, find_table, load_tables, part_files
from features.extraction import MANIFEST, STATED, Extraction, parse_day
from features.parquet_columns import BATCH_ROWS, THREADS

__all__ = [
    "FILE_NAME",
    "SUMMED",
    "ExtractManifest",
    "check_control_totals",
    "control_totals",
    "read_extract_manifest",
    "reconcile",
    "stated_as_of_from",
]

FILE_NAME = "_manifest.json"
Mapper = Callable[[Callable, list], Iterable]  # map(func, units): threads here, or a cluster's tasks
# the amount columns whose sums a manifest may state (all of the contract's amount columns)
SUMMED: Mapping[str, tuple[str, ...]] = {
    "bills": ("amount_due", "min_due"),
    "payments": ("amount",),
    "limits": ("credit_limit",),
}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TWO_63 = 9223372036854775808.0  # every float below 2**63 in magnitude fits in int64


@dataclass(frozen=True)
class ExtractManifest:
    """What an extract states about itself; None where it states nothing.

    ``control_totals`` has the shape ``control_totals()`` returns: {table: {"rows": int, "sums": {column: cents}}}.
    """

    path: Path
    extraction_date: date | None = None
    control_totals: Mapping[str, Mapping[str, object]] | None = None
    as_of_from: date | None = None


# ---------------------------------------------------------------------------------------------- reading


def read_extract_manifest(data_dir: str | Path) -> ExtractManifest | None:
    """The manifest of the extract in ``data_dir``; None when there is none, ContractError when it is broken."""
    path = Path(data_dir) / FILE_NAME
    if not path.is_file():
        return None
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _malformed(path, "", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                         "Re-copy it with the extract: it must be one JSON object.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _malformed(path, "", f"cannot be read: {exc}", "Re-copy it with the extract.") from None
    if not isinstance(fields, dict):
        raise _malformed(path, "", f"is not a JSON object (got {json.dumps(fields)[:40]})",
                         'Write one object, e.g. {"extraction_date": "2024-12-31", "control_totals": {...}}.')
    totals = fields.get("control_totals")
    return ExtractManifest(
        path,
        _stated_day(path, fields["extraction_date"]) if "extraction_date" in fields else None,
        None if totals is None and "control_totals" not in fields else _control_totals(path, totals),
        _stated_day(path, fields["as_of_from"], "as_of_from") if "as_of_from" in fields else None,
    )


def _malformed(path: Path, field: str, what: str, hint: str) -> ContractError:
    return ContractError([Problem("manifest", field, what, hint=hint, source=str(path))])


def _stated_day(path: Path, value: object, field: str = "extraction_date") -> date:
    """A stated day: exactly YYYY-MM-DD and a real day (no time, no other spelling)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    what = "the day the extract was taken" if field == "extraction_date" else "the day"
    raise _malformed(path, field, f"is not a date as YYYY-MM-DD (got {json.dumps(value)})",
                     f"Write {what} as YYYY-MM-DD, e.g. 2024-12-31, or leave the field out.")


def _control_totals(path: Path, value: object) -> dict[str, dict[str, object]]:
    """Per table {"rows": int, "sums": {column: int}}, every name and number checked."""
    if not isinstance(value, dict):
        raise _malformed(path, "control_totals", f"is not an object (got {json.dumps(value)[:40]})",
                         'Write {"bills": {"rows": 123, "sums": {"amount_due": 4567}}, ...}.')
    out: dict[str, dict[str, object]] = {}
    for table, entry in value.items():
        field = f"control_totals.{table}"
        if table not in SCHEMAS:
            raise _malformed(path, field, "is not a table of the contract",
                             f"Name one of {', '.join(ALL_TABLES)}.")
        if not isinstance(entry, dict) or "rows" not in entry or set(entry) - {"rows", "sums"}:
            raise _malformed(path, field, f"is not {{\"rows\": ..., \"sums\": {{...}}}} (got {json.dumps(entry)[:60]})",
                             'State the row count and, optionally, the sums: {"rows": 123, "sums": {...}}.')
        sums = entry.get("sums", {})
        if not isinstance(sums, dict):
            raise _malformed(path, f"{field}.sums", "is not an object", 'Write {"column": cents, ...}.')
        summed = SUMMED.get(table, ())
        for column in sums:
            if column not in summed:
                raise _malformed(path, f"{field}.sums.{column}", "is not a summed column of the table",
                                 f"Sums are stated for {', '.join(summed) or 'no column of this table'}.")
        out[table] = {"rows": _whole(path, f"{field}.rows", entry["rows"], "rows", minimum=0),
                      "sums": {c: _whole(path, f"{field}.sums.{c}", v, "cents") for c, v in sums.items()}}
    return out


def _whole(path: Path, field: str, value: object, unit: str, *, minimum: int | None = None) -> int:
    """An integer as JSON wrote it: 12.0, "12" and true are refused, not read as 12 or 1."""
    if isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum):
        return value
    rule = "the sum of round(value * 100) over the rows" if unit == "cents" else "an integer of at least 0"
    raise _malformed(path, field, f"is not a whole number of {unit} (got {json.dumps(value)})", f"Write {rule}.")


# ------------------------------------------------------------------------------------------ computing


def control_totals(data_dir: str | Path, tables: Iterable[str] | None = None, *,
                   sums: bool = True, mapper: Mapper | None = None) -> dict[str, dict[str, object]]:
    """Row counts and cent sums of the tables found in ``data_dir`` (all of the contract's, or ``tables``);
    with ``sums=False`` row counts only (Parquet footers alone: what a job checks before any heavy work).

    Streaming and columnar: Parquet row counts come from the footers; only the summed columns are decoded,
    one row group (or CSV block) at a time, on a few threads, or by ``mapper(func, units)`` (e.g. a
    cluster's executors: features.spark_checks.on_executors). A summed column no part holds is left out.
    """
    folder = Path(data_dir)
    wanted = ALL_TABLES if tables is None else tuple(tables)
    unknown = [name for name in wanted if name not in SCHEMAS]
    if unknown:
        raise KeyError(f"not tables of the contract: {', '.join(unknown)} (expected {', '.join(ALL_TABLES)})")
    found = {name: path for name in wanted if (path := find_table(folder, name)) is not None}
    out: dict[str, dict[str, object]] = {}
    work: list[tuple[str, Path, int, tuple[str, ...]]] = []
    for name, path in found.items():
        if path.suffix == ".csv":
            out[name] = _csv_totals(path, name)
            continue
        rows, columns = 0, []
        for file in part_files(path) if path.is_dir() else [path]:
            footer = _open(file, name).metadata
            here = tuple(c for c in SUMMED.get(name, ()) if c in footer.schema.to_arrow_schema().names)
            rows += footer.num_rows
            columns += [c for c in here if c not in columns]
            work += [(name, file, group, here) for group in range(footer.num_row_groups) if here and sums]
        out[name] = {"rows": rows, "sums": dict.fromkeys((c for c in SUMMED.get(name, ()) if c in columns), 0)}
    for name, cents_by_column in (mapper or _on_threads)(_unit_cents, work):
        for column, cents in cents_by_column.items():
            out[name]["sums"][column] += cents
    return out


def _on_threads(func: Callable, units: list) -> list:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(func, units))


def _unit_cents(unit: tuple[str, Path, int, tuple[str, ...]]) -> tuple[str, dict[str, int]]:
    return unit[0], _row_group_cents(*unit)


def _open(file: Path, table: str) -> pq.ParquetFile:
    """The part's reader (its footer read), or a ContractError naming the part: a cut copy lacks its footer."""
    try:
        if file.stat().st_size == 0:
            raise ValueError("the file is empty (0 bytes)")
        return pq.ParquetFile(file)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise _unreadable(table, file, exc) from None


def _unreadable(table: str, file: Path, exc: Exception) -> ContractError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ContractError([Problem(table, "", f"cannot be read from {file}: {reason}",
                                  hint="The file may be truncated or damaged: re-copy the folder or re-extract.")])


def _row_group_cents(table: str, file: Path, group: int, columns: tuple[str, ...]) -> dict[str, int]:
    """The cent sums of one row group, read in slices of at most BATCH_ROWS rows. Each call opens its own
    reader: threads never share one."""
    sums = dict.fromkeys(columns, 0)
    try:
        batches = _open(file, table).iter_batches(BATCH_ROWS, row_groups=[group], columns=list(columns),
                                                  use_threads=False)
        for batch in batches:
            for column in columns:
                sums[column] += _cents(batch.column(column), table, column, file)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(table, file, exc) from None
    return sums


def _csv_totals(path: Path, table: str) -> dict[str, object]:
    """Rows and cent sums of a CSV table, block by block, parsing only the summed columns (or, to count rows,
    the first column as text)."""
    try:
        if path.stat().st_size == 0:
            raise ValueError("the file is empty (0 bytes)")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        if not header:
            raise ValueError("the first line is not a header row")
    except (OSError, ValueError) as exc:
        raise _unreadable(table, path, exc) from None
    columns = [c for c in SUMMED.get(table, ()) if c in header]
    types = {c: pa.float64() for c in columns} if columns else {header[0]: pa.string()}
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types))
    rows, sums = 0, dict.fromkeys(columns, 0)
    try:
        for batch in pa_csv.open_csv(path, convert_options=convert):
            rows += batch.num_rows
            for column in columns:
                sums[column] += _cents(batch.column(column), table, column, path)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(table, path, exc) from None
    return {"rows": rows, "sums": sums}


def _cents(values: pa.Array, table: str, column: str, file: Path) -> int:
    """Sum of round(value * 100) over the values, exactly, as a Python integer."""
    if not pa.types.is_float64(values.type):
        try:
            values = values.cast(pa.float64())
        except pa.ArrowException as exc:
            raise ContractError([Problem(table, column, f"is not a number in {file}: {exc}",
                                         hint="Amounts are numbers: fix the extract.")]) from None
    high, low, bad = _cent_sum(values.to_numpy(zero_copy_only=False))
    if bad >= 0:
        raise ContractError([Problem(table, column, f"holds {values[bad].as_py()!r}, not a finite amount within "
                                     f"±9.2e16 (cents beyond int64), in {file}",
                                     hint="Amounts are finite numbers: fix the extract.")])
    return (int(high) << 32) + int(low)


@njit(cache=True, nogil=True)
def _cent_sum(values):  # pragma: no cover - compiled
    """Sum of round(value * 100) (NaN counts 0) split into high and low 32-bit halves, so neither int64
    accumulator can overflow whatever the values; the position of a value that is not a finite amount (or
    -1)."""
    high = 0
    low = 0
    for i in range(len(values)):
        x = values[i]
        if x != x:  # null or NaN
            continue
        cents = np.rint(x * 100.0)
        if not abs(cents) < _TWO_63:
            return high, low, i
        whole = np.int64(cents)
        high += whole >> 32
        low += whole & 0xFFFFFFFF
    return high, low, -1


# ---------------------------------------------------------------------------------------------- checking


def reconcile(data_dir: str | Path, manifest: ExtractManifest, *, sums: bool = True,
              mapper: Mapper | None = None) -> list[Problem]:
    """One Problem per table whose rows or sums differ from what ``manifest`` states (tables it does not
    name are not checked); empty when all agree. ``sums=False``: row counts only; ``mapper``: as in
    control_totals."""
    stated = manifest.control_totals or {}
    if not stated:
        return []
    folder = Path(data_dir)
    found = control_totals(folder, stated, sums=sums, mapper=mapper)
    if not sums:
        stated = {table: {"rows": want["rows"], "sums": {}} for table, want in stated.items()}
    problems = []
    for table, want in stated.items():
        if table not in found:
            problems.append(Problem(
                table, "", f"is stated in {manifest.path.name} ({want['rows']:,} rows) but not found in {folder} "
                f"(looked for {table}.parquet, {table}/, {table}.csv)",
                hint="The transfer may be incomplete: re-extract or re-copy the folder, then run again."))
        elif problem := _mismatch(table, want, found[table], manifest.path.name, find_table(folder, table)):
            problems.append(problem)
    return problems


def check_control_totals(data_dir: str | Path, *, sums: bool = True, mapper: Mapper | None = None) -> list[Problem]:
    """Read the extract's manifest and reconcile the tables against it: what a job calls before heavy work.
    Empty when there is no manifest or it states no control totals; ContractError when it is malformed.
    ``sums=False``: row counts only, from the footers (the nightly job reads the sums while it scores);
    ``mapper``: as in control_totals."""
    manifest = read_extract_manifest(data_dir)
    return [] if manifest is None else reconcile(data_dir, manifest, sums=sums, mapper=mapper)


def _mismatch(table: str, want: Mapping, got: Mapping, manifest: str, source: Path) -> Problem | None:
    """The table's Problem, listing every stated figure that differs (the manifest named once), or None."""
    differ = []  # (stated, found) per differing figure
    if want["rows"] != got["rows"]:
        differ.append((f"{want['rows']:,} rows", f"{got['rows']:,} found"))
    columns = [c for c, cents in want["sums"].items() if got["sums"].get(c) != cents]
    for column in columns:
        cents, found = want["sums"][column], got["sums"].get(column)
        difference = 0 if found is None else found - cents
        differ.append((f"sum of {column} {_money(cents)}", "but the column is missing" if found is None else
                       f"{_money(found)} found ({_money(abs(difference))} {'more' if difference > 0 else 'less'})"))
    if not differ:
        return None
    details = [f"{said} stated{f' in {manifest}' if i == 0 else ''}, {found}" for i, (said, found) in enumerate(differ)]
    if want["rows"] > got["rows"]:
        hint = "Fewer rows than stated: the transfer may be truncated (a part file missing or cut short)."
    elif want["rows"] < got["rows"]:
        hint = "More rows than stated: parts of another extract may be mixed in, or the manifest is another's."
    else:
        hint = "The rows are all there but amounts differ: a part was changed or replaced after extraction."
    return Problem(table, columns[0] if len(differ) == 1 and columns else "", f"in {source}: " + "; ".join(details),
                   hint=hint + " Re-extract or re-copy the folder, then run again.")


def _money(cents: int) -> str:
    """Cents as currency with thousands separators, exactly (no float): 123456789 -> 1,234,567.89."""
    units, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{units:,}.{rest:02d}"


# ------------------------------------------------------------------------------------------ the extract


def stated_extraction(data_dir: str | Path, extracted_on: str | None = None) -> Extraction | None:
    """The extraction date the user (`--extracted-on`) or the extract's manifest states; None when neither
    does (it is then derived from event dates, features.extraction). Both stated and different is refused:
    which one is true cannot be guessed."""
    manifest = read_extract_manifest(data_dir)
    said = None if manifest is None or manifest.extraction_date is None else pd.Timestamp(manifest.extraction_date)
    if extracted_on is None:
        return None if said is None else Extraction(said, MANIFEST)
    try:
        day = parse_day(extracted_on, "--extracted-on")
    except ValueError as exc:
        raise ContractError([Problem("data", "", str(exc), hint="Write the day the extract was taken as "
                                     "YYYY-MM-DD, e.g. --extracted-on 2025-12-31.")]) from None
    if said is not None and said != day:
        raise ContractError([Problem(
            "data", "", f"--extracted-on {extracted_on} differs from extraction_date {said:%Y-%m-%d} in "
            f"{manifest.path}", hint="Leave out --extracted-on to use the manifest's date, or correct the manifest.")])
    return Extraction(day, STATED)


def stated_as_of_from(tables: Tables) -> pd.Timestamp | None:
    """The first as-of day the manifest of the extract the tables were read from states (None if none)."""
    source = tables.sources.get("accounts")
    manifest = read_extract_manifest(Path(source).parent) if source else None
    return None if manifest is None or manifest.as_of_from is None else pd.Timestamp(manifest.as_of_from)


def load_extract(data_dir: str | Path, *, extracted_on: str | None = None, **tables) -> Tables:
    """An extract as a whole, as training and validation read it: its stated extraction date, its tables
    reconciled against the manifest's control totals, then loaded and validated (`load_tables`' keywords)."""
    stated = stated_extraction(data_dir, extracted_on)
    problems = check_control_totals(data_dir)
    if problems:
        raise ContractError(problems)
    return load_tables(data_dir, extraction=stated, **tables)
