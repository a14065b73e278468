"""A bill_id repeated across chunks, counted over the whole bills table.

Each chunk checks its own rows (features.problem_tally adds their findings up); a bill_id repeated in two
chunks is seen by neither. When chunks' bill-id ranges overlap, the whole column is read once to count
repeats (chunks of an extract sorted by account rarely overlap).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from features.contract import find_table
from features.problem_tally import repeated_bill_ids_problem
from scoring.chunks import table_columns


def repeated_bill_ids(data_dir: Path):
    """The Problem of bill_id values that occur more than once in the whole bills table, or None."""
    path = find_table(Path(data_dir), "bills")
    column = table_columns(path, ("bill_id",)).column("bill_id")
    ids = column.drop_null().to_numpy().astype(np.int64, copy=False)
    values, counts = np.unique(ids, return_counts=True)
    repeated = counts > 1
    if not repeated.any():
        return None
    return repeated_bill_ids_problem(values[repeated], counts[repeated].sum(), len(column), str(path))
