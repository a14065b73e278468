"""What a read by account-id range never sees, checked for the whole extract before any chunk is read.

A chunk reads the rows of accounts lo <= account_id < hi. Rows of bills, payments or limits whose account_id
is null, or lies outside the accounts table's id range, belong to no chunk and would be silently left out
(accounts missing from the edges of the accounts extract would go unscored). Parquet statistics (min, max
and null count per row group) tell whether there are any without reading a value; only when they may be is
the column read, and then every unknown account is counted, over the whole table. Unknown accounts inside
the range are found by the chunks themselves. The same words as `python -m features validate`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import NULL_HINT, SAMPLE, Problem, find_table, part_files, unknown_account_hint
from scoring.chunks import table_columns

KEYED = ("bills", "payments", "limits")


def edge_problems(data_dir: Path, account_id: np.ndarray) -> list[Problem]:
    """Null account ids, and ids not in `account_id` (sorted), of every keyed table that may hold any."""
    lo, hi = (int(account_id[0]), int(account_id[-1])) if len(account_id) else (1, 0)  # none: all unknown
    problems = []
    for name in KEYED:
        path = find_table(Path(data_dir), name)
        if path is None or _inside(path, lo, hi):
            continue
        ids = table_columns(path, ("account_id",))
        if ids.num_columns:  # a table without the column: each chunk's validation names it
            problems += _counted(name, ids.column("account_id"), account_id, str(path))
    return problems


def _inside(path: Path, lo: int, hi: int) -> bool:
    """Whether Parquet statistics prove every account_id of the table non-null and within [lo, hi]."""
    if path.suffix == ".csv":
        return False
    for part in part_files(path) if path.is_dir() else [path]:
        meta = pq.ParquetFile(part).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if "account_id" not in names:
            return False
        j = names.index("account_id")
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(j).statistics
            if meta.row_group(g).num_rows == 0:
                continue
            if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
                return False
            if not (isinstance(stats.min, int) and lo <= stats.min and stats.max <= hi):
                return False
    return True


def _counted(name: str, ids: pa.ChunkedArray, known: np.ndarray, source: str) -> list[Problem]:
    """The whole table's null and unknown account ids, as the contract words them."""
    total = len(ids)
    nulls = ids.null_count
    values = ids.drop_null().to_numpy() if nulls else ids.to_numpy()
    if values.dtype.kind not in "iu":  # not integers: the chunks' conversion names the values
        return [] if not nulls else [Problem(name, "account_id", "is null", nulls, total, hint=NULL_HINT,
                                             source=source)]
    values = values.astype(np.int64, copy=False)
    if len(known):
        pos = np.minimum(np.searchsorted(known, values), len(known) - 1)
        unknown = values[known[pos] != values]
    else:
        unknown = values
    problems = []
    if nulls:
        problems.append(Problem(name, "account_id", "is null", nulls, total, hint=NULL_HINT, source=source))
    if len(unknown):
        samples = tuple(str(v) for v in dict.fromkeys(unknown[:SAMPLE * 4].tolist()))[:SAMPLE]
        problems.append(Problem(name, "account_id", "is not in accounts.account_id", len(unknown), total,
                                "account_id", samples, unknown_account_hint(name), source))
    return problems

