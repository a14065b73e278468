"""Spark for dynascore: a session with the settings that matter set on purpose, and why each.

pandas >= 3: pyspark 4.3 warns that it does not yet fully support pandas 3. The project's Spark path never
goes through Spark's pandas integration: rows arrive and leave as Arrow record batches (`mapInArrow`,
`applyInArrow`), Parquet is read and written by Spark or pyarrow, and nothing calls `toPandas` or builds a
Spark frame from pandas.
Inside a group, Arrow is turned into pandas by the project's own reader (features.contract), the same code the
local engine runs. So the warning concerns code we do not call: it is silenced here, by its text only, and a
test holds that the engine makes no pandas conversion on the driver. Code of your own that does convert through
pandas on Spark should pin pandas < 3 in its own environment.
"""
from __future__ import annotations

import os
import sys
import warnings

PANDAS_WARNING = "PySpark does not yet fully support pandas >= 3"
SETTINGS = {
    # rows per Arrow batch Spark hands the Python side (the packing of rows by bucket, the output rows on
    # their way back): a group is gathered whole before it is scored, so this bounds the transfer's pieces,
    # not the group; its memory is set by the buckets (about a local chunk's accounts each, 125,000 by
    # default: about 1.5 GB)
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
    # a value that does not fit its declared type fails instead of being cast silently
    "spark.sql.execution.pandas.convertToArrowArraySafely": "true",
    # dates are calendar dates: no session time zone may shift them
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(master: str | None = None, app: str = "dynascore", conf: dict | None = None):
    """A SparkSession with SETTINGS (and `conf` over them). `master`: e.g. local[2]; None takes what spark-submit
    gives, else local[*]. A local master binds to 127.0.0.1 unless SPARK_LOCAL_IP says otherwise, and its
    Python workers run this interpreter, so they import what the driver imports."""
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit: this machine
        master = "local[*]"
    if master is not None and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master is not None:
        builder = builder.master(master)
    for key, value in {**SETTINGS, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
