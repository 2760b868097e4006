"""Shared fixtures: an isolated workspace per test, and one local Spark session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path):
    """Repo conf with the workspace root moved into a temp dir."""
    from driftgate.core.settings import load_settings

    return load_settings(REPO / "conf", "demo", (f"workspace.root={tmp_path / '.driftgate'}",))


@pytest.fixture
def ws(settings):
    """An open local workspace (Delta tables + SQLite MLflow) under a temp dir."""
    from driftgate.workspace import open_workspace

    return open_workspace(settings)


@pytest.fixture(scope="session")
def spark():
    """A real pyspark session, ``local[2]``, shared by the whole run. With ``DRIFTGATE_TEST_SPARK=connect``
    (what `make test-runtimes` sets for a serverless target) a Spark Connect client of a local server
    instead: serverless compute offers only that API (no ``sparkContext``)."""
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    # Python workers run $PYSPARK_PYTHON, else "python3" from PATH: without an activated venv
    # that is another interpreter, lacking pyarrow. Pin them to this one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    mode = os.environ.get("DRIFTGATE_TEST_SPARK", "classic")
    if mode not in ("classic", "connect"):
        raise pytest.UsageError(f"DRIFTGATE_TEST_SPARK={mode!r}: expected classic or connect")
    if mode == "connect":
        pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")
        from tests.spark_checks import connect_session

        session = connect_session()
        assert "connect" in type(session).__module__, type(session)
        yield session
        session.stop()
        from pyspark import SparkContext

        if SparkContext._active_spark_context is not None:  # the local server's own session
            SparkContext._active_spark_context.stop()
        return
    session = (
        SparkSession.builder.master("local[2]")
        .appName("driftgate-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    yield session
    session.stop()


# The Databricks path: what a job task runs on a cluster. `make test-runtimes` runs exactly these
# (pytest -m runtime) on each supported runtime's package versions and Spark version.
RUNTIME_MODULES = frozenset({
    "test_bundle.py",           # bundle, notebook tasks end to end, task values
    "test_workspace.py",        # registry lineage, experiment folder, tables, audit
    "test_webhook_jobs.py",     # jobs/run-now through databricks-sdk
    "test_monitor_spark.py",    # the Spark engine on the runtime's Spark
    "test_training_train.py",   # training, logging and registration on the runtime's MLflow
    "test_training_features.py",  # feature sources and how the runtime's MLflow saves a model
    "test_promotion_flow.py",   # shadow test and promotion
    "test_tasks_equivalence.py",  # the job's notebooks end to end on the demo world
    "test_uc_registration.py",  # the challenger registered on databricks-uc: create, upload, finalize
    "test_databricks_fake.py",  # experiment folder, UC aliases, jobs, evaluate/promote tasks on the fake
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in RUNTIME_MODULES:
            item.add_marker(pytest.mark.runtime)
