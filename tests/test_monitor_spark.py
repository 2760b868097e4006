"""The Spark path on real Spark: the Spark engine writes the same rows as the embedded engine, and Arrow
batches become DataFrames with their schema kept. On a classic local[2] session, and on a local Spark
Connect session (the API of serverless and standard compute: no ``sparkContext``)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.spark_checks import assert_arrow_round_trip, assert_engine_parity

pytestmark = pytest.mark.spark

# Spark's Python workers must run this interpreter and import this checkout (set before the
# session fixture starts the JVM, which is why it happens at import time).
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO, os.environ.get("PYTHONPATH")) if p)


def test_spark_engine_matches_embedded(spark, settings, tmp_path):
    assert_engine_parity(settings, tmp_path, spark)


def test_arrow_batches_keep_their_schema_in_spark(spark):
    assert_arrow_round_trip(spark)


def test_spark_35_path_python_rows_keep_the_schema_too(spark, monkeypatch):
    """PySpark 3.5 (DBR 15.4) cannot take an Arrow table: the Python-rows path must give the same frame."""
    import pyarrow as pa

    from driftgate.workspace import spark_arrow

    monkeypatch.setattr(spark_arrow, "takes_arrow", lambda: False)
    seen = []

    class Spark35:
        def createDataFrame(self, data, schema=None):
            seen.append(type(data))
            assert not isinstance(data, pa.Table)
            return spark.createDataFrame(data, schema=schema)

    assert_arrow_round_trip(Spark35())
    assert seen == [list, list]


def test_untyped_columns_are_refused_not_written_as_void():
    import pyarrow as pa

    from driftgate.core.errors import TableError
    from driftgate.workspace.spark_arrow import spark_schema

    with pytest.raises(TableError, match="main.s.t: column.*x have no type"):
        spark_schema(pa.schema([("x", pa.null())]), table="main.s.t")


def test_the_spark_path_on_spark_connect(tmp_path):
    """A Spark Connect session cannot share this process with the classic one: run it in its own."""
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
    proc = subprocess.run([sys.executable, os.path.join(_REPO, "tests", "spark_checks.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "arrow round trip on pyspark.sql.connect.session.SparkSession" in proc.stdout
    assert "engine parity on pyspark.sql.connect.session.SparkSession" in proc.stdout
