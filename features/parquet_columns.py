"""Parquet parts straight into numpy columns, batch by batch.

Why: reading a whole table into Arrow and then copying it into pandas holds two copies of 20 M bills at
once, and on the VMs we run on every gigabyte a process touches for the first time costs 1-3 s. Here each
batch is decoded, copied into the final columns and dropped, so Arrow's few reused buffers are all the
extra memory there is: about half the time and 0.6 GB less peak on the benchmark's bills and payments.

Only the plain case takes this path: every part with the same schema of dates (date32), integers,
float64 and booleans. Anything else returns None and the caller reads through Arrow as before.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.days import days_to_ticks

THREADS = min(4, os.cpu_count() or 1)  # parts read at once (each holds one decoded row group)
BATCH_ROWS = 1 << 22  # a row group up to this size is decoded whole (faster); larger ones in slices


def _kind(kind: pa.DataType) -> str | None:
    if pa.types.is_date32(kind):
        return "date"
    if pa.types.is_integer(kind) and (pa.types.is_signed_integer(kind) or kind.bit_width < 64):
        return "int"
    if pa.types.is_float64(kind):
        return "float"
    if pa.types.is_boolean(kind):
        return "bool"
    return None


def read_columns(parts: Sequence[Path]) -> pd.DataFrame | None:
    """The parts as one frame (dates as datetime64[s], integers as int64 or Int64 where nulls are,
    float64, booleans), or None when a part's schema differs or a column is of another type."""
    name = (lambda p: Path(p).name) if len(parts) > 1 else (lambda p: None)  # one file: the caller names it
    files = [_named(pq.ParquetFile, name(p), p) for p in parts]
    if not files:
        return None
    schema = files[0].schema_arrow
    kinds = {field.name: _kind(field.type) for field in schema}
    if (len(kinds) != len(schema) or None in kinds.values()
            or any(not f.schema_arrow.equals(schema) for f in files[1:])):
        return None
    rows = sum(f.metadata.num_rows for f in files)
    dtype = {"date": np.int64, "int": np.int64, "float": np.float64, "bool": np.bool_}
    values = {name: np.empty(rows, dtype=dtype[kind]) for name, kind in kinds.items()}
    nulls = {name: np.zeros(rows, dtype=bool) for name, kind in kinds.items() if kind in ("int", "bool")}
    starts = np.cumsum([0] + [f.metadata.num_rows for f in files])

    def read_part(i: int) -> None:  # each part into its own rows: parts go in parallel, both cores decoding
        at = starts[i]          # and, as much, touching the columns' fresh pages for the first time
        for batch in _batches(files[i], use_threads=len(files) == 1):
            n = batch.num_rows
            for name, kind in kinds.items():
                _copy(batch.column(name), kind, values[name][at:at + n],
                      nulls[name][at:at + n] if name in nulls else None)
            at += n

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda i: _named(read_part, name(parts[i]), i), range(len(files))))
    return pd.DataFrame({name: _series(values[name], kind, nulls.get(name)) for name, kind in kinds.items()},
                        index=pd.RangeIndex(rows), copy=False)


def _named(call, part: str | None, *args):
    """call(*args), a failure naming the part file: in a folder of hundreds, which one is broken?"""
    if part is None:
        return call(*args)
    try:
        return call(*args)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"part {part}: {str(exc).strip() or type(exc).__name__}") from exc


def _batches(f: pq.ParquetFile, use_threads: bool):
    groups = [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)]
    if max(groups, default=0) <= BATCH_ROWS:
        for g in range(len(groups)):
            yield from f.read_row_group(g, use_threads=use_threads).to_batches()
    else:
        yield from f.iter_batches(batch_size=BATCH_ROWS, use_threads=use_threads)


def _copy(array: pa.Array, kind: str, out: np.ndarray, null_out: np.ndarray | None) -> None:
    if kind == "date":  # day numbers (NaT where null) times 86,400: numpy's cast is 10 x slower
        days_to_ticks(array.to_numpy(zero_copy_only=False).view(np.int64), 86_400, out)
        return
    if kind == "int":  # values under nulls are arbitrary; the mask says which
        out[:] = integer_values(array)
    elif kind == "bool":
        out[:] = array.fill_null(False).to_numpy(zero_copy_only=False)
    else:  # float64: nulls are NaN
        out[:] = array.to_numpy(zero_copy_only=False)
    if null_out is not None and array.null_count:  # dates and floats carry their nulls as NaT and NaN
        null_out[:] = array.is_null().to_numpy(zero_copy_only=False)


def integer_values(array: pa.Array) -> np.ndarray:
    """An integer array's values, a view of its data buffer (values under nulls are arbitrary)."""
    dtype = np.dtype(array.type.to_pandas_dtype())
    data = np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + len(array))
    return data[array.offset:]


def _series(values: np.ndarray, kind: str, nulls: np.ndarray | None) -> pd.Series:
    """What Arrow's own conversion gives for the column, wrapped without a copy."""
    if kind == "date":
        return pd.Series(values.view("datetime64[s]"), copy=False)
    if nulls is None or not nulls.any():
        return pd.Series(values, copy=False)
    if kind == "int":
        return pd.Series(pd.arrays.IntegerArray(values, nulls), copy=False)
    mixed = values.astype(object)  # booleans with nulls: True/False/None, as Arrow gives them
    mixed[nulls] = None
    return pd.Series(mixed)
