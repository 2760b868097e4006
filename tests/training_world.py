"""A small synthetic churn world with the demo's schema, for the training tests.

Written here rather than taken from ``driftgate.demo`` so the tests pin the schema
they rely on and stay independent of the demo generator.
"""
from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

TRAINING = "main.driftgate_demo.training_set"
FEATURES = "main.driftgate_demo.customer_features"
START = datetime(2026, 6, 1, tzinfo=timezone.utc)
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "age"]
CATEGORICAL = ["plan", "region"]


def events(*, days: int = 30, rows_per_day: int = 40, seed: int = 0, customers: int = 300,
           signal: float = 1.0) -> pd.DataFrame:
    """Labelled events whose churn depends on the features (``signal`` scales how much)."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    offsets = np.sort(rng.uniform(0, days * 86400, n))
    frame = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in rng.integers(0, customers, n)],
        "timestamp": pd.to_datetime([START + timedelta(seconds=float(s)) for s in offsets], utc=True),
        "tenure_months": rng.gamma(2.0, 12.0, n),
        "monthly_charges": rng.normal(60, 20, n),
        "support_calls": rng.poisson(1.5, n).astype("int64"),
        "usage_gb": rng.gamma(2.0, 10.0, n),
        "age": rng.integers(18, 85, n).astype("int64"),
        "plan": rng.choice(["basic", "standard", "premium"], n),
        "region": rng.choice(["north", "south", "east", "west", "central"], n),
    })
    frame["senior"] = frame["age"] >= 65
    z = (-1.2 + signal * (0.7 * (frame["support_calls"] - 1.5) - 0.04 * (frame["tenure_months"] - 24)
                          + 0.8 * (frame["plan"] == "basic")))
    frame["label"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype("int64")
    frame["timestamp"] = frame["timestamp"].astype("datetime64[us, UTC]")
    return frame


def write(ws, frame: pd.DataFrame, *, mode: str = "overwrite") -> None:
    """Write ``frame`` as the training set (keys, time, label) and the feature table."""
    features = frame[["customer_id", "timestamp", *NUMERIC, *CATEGORICAL, "senior"]]
    ws.tables.write(FEATURES, pa.Table.from_pandas(features, preserve_index=False), mode=mode)
    labels = frame[["customer_id", "timestamp", "label"]]
    ws.tables.write(TRAINING, pa.Table.from_pandas(labels, preserve_index=False), mode=mode)


def with_training(ws, **update):
    """A copy of ``ws`` whose ``training`` section has ``update`` applied (validated)."""
    from driftgate.training.config import TrainingConfig

    cfg = TrainingConfig.model_validate({**ws.settings.training.model_dump(), **update})
    return dataclasses.replace(ws, settings=ws.settings.model_copy(update={"training": cfg}))


def world(ws, **kwargs) -> pd.DataFrame:
    frame = events(**kwargs)
    write(ws, frame)
    return frame


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An empty, migrated MLflow SQLite database; copying it spares each test the migrations."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow-template")
    SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri())
    return folder / "mlflow.db"


@pytest.fixture
def tws(settings, mlflow_template):
    """Like the shared ``ws`` fixture, but starts from a pre-migrated MLflow database."""
    from driftgate.workspace import open_workspace

    root = settings.workspace.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, root / "mlflow.db")
    # Fewer boosting rounds than the default: these tests check behaviour, not model quality.
    training = settings.training.model_validate({**settings.training.model_dump(),
                                                 "params": {"max_iter": 20, "max_leaf_nodes": 7}})
    # One OpenMP thread: on a shared 2-core machine, spinning threads cost more than they give.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield open_workspace(settings.model_copy(update={"training": training}))
