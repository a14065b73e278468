"""Packing a table's rows by customer bucket loses, adds and moves no row, however the batches and the holding
limit fall: what Spark shuffles is exactly what each group unpacks."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from features.spark_groups import ROWS, TABLE, group_tables, pack_rows
from features.spark_tables import BUCKET

SCHEMA = pa.schema([("account_id", pa.int64()), ("amount", pa.float64()), ("statement_date", pa.date32())])


def _batches(buckets: list[int], sizes: list[int]) -> list[pa.RecordBatch]:
    out, start = [], 0
    for size in sizes:
        rows = np.arange(start, start + size)
        out.append(pa.RecordBatch.from_arrays(
            [pa.array(rows, pa.int64()), pa.array(rows * 1.5), pa.array(rows.astype("datetime64[D]"), pa.date32()),
             pa.array([buckets[i % len(buckets)] for i in rows], pa.int32())],
            names=[*SCHEMA.names, BUCKET]))
        start += size
    return out


@settings(max_examples=60, deadline=None)
@given(buckets=st.lists(st.integers(-1, 6), min_size=1, max_size=12),
       sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6), limit=st.integers(1, 120))
def test_every_row_reaches_its_buckets_group_once(buckets, sizes, limit):
    batches = _batches(buckets, sizes)
    packed = pa.Table.from_batches(list(pack_rows(batches, "bills", limit=limit)),
                                   schema=pa.schema([(BUCKET, pa.int32()), (TABLE, pa.string()), (ROWS, pa.binary())]))
    assert set(packed.column(TABLE).to_pylist()) <= {"bills"}
    rows = pa.Table.from_batches(batches) if batches else None
    for bucket in set(buckets) | {99}:
        group = packed.filter(pa.compute.equal(packed.column(BUCKET), bucket))
        got = group_tables(group, {"bills": SCHEMA})["bills"]
        want = rows.filter(pa.compute.equal(rows.column(BUCKET), bucket)).drop_columns([BUCKET]).to_pandas()
        assert list(got.columns) == SCHEMA.names
        assert sorted(got["account_id"].tolist()) == sorted(want["account_id"].tolist())
        assert np.allclose(got.sort_values("account_id")["amount"], want.sort_values("account_id")["amount"])
