"""The registered model on Spark: mlflow's spark_udf scores features already built, as the bundle scores them.

A team whose features are already columns of a Spark frame scores them with `mlflow.pyfunc.spark_udf` on the
registered pyfunc model (models/pyfunc_model.py, logged by training.tracking.log_training), in the current
environment (env_manager="local"). The model's signature declares every feature a double: a frame of doubles
(missing values as Spark's nulls) gets the bundle's own probabilities and score; a 64-bit integer column -- the
type of an integer column read from Parquet or made from Python ints -- is refused with the column and the type
named, never rounded into a double silently; a 32-bit integer column widens to a double exactly and scores as
the same values as doubles. The model is the small one of tests/test_tracking.py (five features, three targets).
"""
from __future__ import annotations

import re

import mlflow
import numpy as np
import pyarrow as pa
import pytest
from test_tracking import FEATURES, _oot, _train, make_panel

from training.config import TrainConfig
from training.tracking import log_training

ROWS = 400
OUTPUTS = ["pd_default", "p_early_warning", "p_self_cure"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A model trained and registered in a store of its own, and the out-of-time rows to score."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('spark-udf')}/mlflow.db"
    panel = make_panel()
    result, oot = _train(panel, 0.0), _oot(panel)
    logged = log_training(result, model_name="dynascore", experiment="dynascore-spark-udf", uri=uri,
                          oot_features=oot, config=TrainConfig(n_boot=50))
    rows = oot.head(ROWS).reset_index(drop=True)
    assert rows["days_since_late"].isna().any()  # missing values travel as Spark's nulls
    return {"uri": uri, "model_uri": logged.model_uri, "bundle": result.bundle, "rows": rows}


@pytest.fixture(scope="module")
def udf(spark, registered):
    mlflow.set_tracking_uri(registered["uri"])
    mlflow.set_registry_uri(registered["uri"])
    return mlflow.pyfunc.spark_udf(spark, registered["model_uri"], env_manager="local")


def _frame(spark, rows, types: dict[str, pa.DataType] | None = None):
    """The rows' features as a Spark frame (from Arrow: NaN becomes null), with a row number to sort by; in one
    partition, so that one Python worker loads the model and keeps it for the next frames."""
    types = types or {}
    columns = {f: pa.array(rows[f].to_numpy(), from_pandas=True).cast(types.get(f, pa.float64())) for f in FEATURES}
    return spark.createDataFrame(pa.table({"row": np.arange(len(rows)), **columns})).coalesce(1)


def _scores(frame, udf) -> pa.Table:
    # called without arguments, the udf reads the columns its signature names
    return frame.select("row", udf().alias("p")).select("row", "p.*").toArrow().sort_by("row")


def _same(got: pa.Table, want) -> None:
    for column in OUTPUTS:
        np.testing.assert_allclose(got.column(column).to_numpy(), want[column].to_numpy(), rtol=0, atol=1e-12,
                                   err_msg=column)
    np.testing.assert_array_equal(got.column("score").to_numpy(), want["score"].to_numpy())


def test_a_frame_of_double_features_gets_the_bundles_own_probabilities(spark, registered, udf):
    rows = registered["rows"]
    got = _scores(_frame(spark, rows), udf)
    assert got.column_names == ["row", *OUTPUTS, "score"] and got.num_rows == ROWS
    assert got.column("pd_default").null_count == 0
    _same(got, registered["bundle"].predict(rows[FEATURES]))


def test_a_64_bit_integer_column_is_refused_naming_the_column_and_its_type(spark, registered, udf):
    rows = registered["rows"].assign(dpd_worst_12=lambda r: r["dpd_worst_12"].round())
    frame = _frame(spark, rows, {"dpd_worst_12": pa.int64()})
    assert dict(frame.dtypes)["dpd_worst_12"] == "bigint"
    with pytest.raises(Exception) as refused:
        _scores(frame, udf)
    message = str(refused.value)
    assert re.search(r"column dpd_worst_12\b.*int64 to float64", message), message[-2000:]


def test_a_32_bit_integer_column_widens_exactly_and_scores_as_the_same_doubles(spark, registered, udf):
    rows = registered["rows"].assign(dpd_worst_12=lambda r: r["dpd_worst_12"].round())
    frame = _frame(spark, rows, {"dpd_worst_12": pa.int32()})
    assert dict(frame.dtypes)["dpd_worst_12"] == "int"
    _same(_scores(frame, udf), registered["bundle"].predict(rows[FEATURES]))
