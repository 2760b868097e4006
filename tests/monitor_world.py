"""A small synthetic inference log + baseline for the monitoring tests (no demo dependency)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
LOG = "main.driftgate_demo.inference_log"
BASELINE = "main.driftgate_demo.inference_baseline"


def frame(days: int, *, rows_per_day: int = 300, drift_from: int | None = None, first_day: int = 0,
          model_id: str = "1", seed: int = 0, labelled: bool = True, start: datetime = START) -> pa.Table:
    """``days`` days of requests; from day ``drift_from`` on features shift and the model degrades."""
    parts = []
    for day in range(first_day, first_day + days):
        rng = np.random.default_rng([seed, day])
        n = rows_per_day
        d = 1.0 if drift_from is not None and day >= drift_from else 0.0
        tenure = rng.gamma(2.0, 12.0, n) * (1 - 0.5 * d)
        charges = rng.normal(60 + 25 * d, 10, n)
        calls = rng.poisson(1 + 2 * d, n)
        usage = rng.lognormal(np.log(40) - 0.6 * d, 0.5, n)
        age = rng.integers(18, 86, n)
        plan = rng.choice(["basic", "standard", "premium"], n, p=[0.35 + 0.3 * d, 0.4 - 0.2 * d, 0.25 - 0.1 * d])
        region = rng.choice(["north", "south", "east", "west", "central"], n)
        logit = 0.15 * (charges - 60) + 0.8 * (calls - 1) - 0.05 * (tenure - 24)
        if d:
            logit = -logit  # concept drift: the old model is now wrong
        label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
        proba = 1 / (1 + np.exp(-(0.15 * (charges - 60) + 0.8 * (calls - 1) - 0.05 * (tenure - 24))))
        secs = np.sort(rng.integers(0, 86400, n))
        ts = np.datetime64(start.replace(tzinfo=None), "us") + np.timedelta64(day, "D") + secs.astype("timedelta64[s]")
        parts.append(pa.table({
            "request_id": [f"r{day}-{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in rng.integers(0, 500, n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "model_id": [model_id] * n,
            "prediction": (proba >= 0.5).astype(np.int64),
            "probability": proba,
            "label": pa.array(label if labelled else [None] * n, pa.int64()),
            "tenure_months": tenure, "monthly_charges": charges, "support_calls": calls.astype(np.int64),
            "usage_gb": usage, "age": age.astype(np.int64), "plan": plan, "region": region,
            "senior": age >= 65,
        }))
    return pa.concat_tables(parts)


def light_workspace(root, *overrides: str):
    """A local workspace without MLflow (Delta tables only): the monitor needs no tracking store."""
    from pathlib import Path

    from driftgate.core.settings import load_settings
    from driftgate.workspace.context import Workspace
    from driftgate.workspace.registry import FakeRegistry
    from driftgate.workspace.tables import DeltaTableStore
    from driftgate.workspace.task_values import LocalTaskValues

    root = Path(root)
    repo = Path(__file__).resolve().parent.parent
    settings = load_settings(repo / "conf", "demo", (f"workspace.root={root}", *overrides))
    return Workspace(settings=settings, tables=DeltaTableStore(root / "lakehouse"), registry=FakeRegistry(),
                     task_values=LocalTaskValues(root, "adhoc", "monitor"), tracking_uri="", registry_uri="",
                     root=root)


def write_world(ws, *, days: int = 10, drift_from: int | None = None, rows_per_day: int = 300) -> None:
    ws.tables.write(LOG, frame(days, drift_from=drift_from, rows_per_day=rows_per_day), mode="overwrite")
    base = frame(5, rows_per_day=rows_per_day, seed=99, start=START - timedelta(days=10))
    ws.tables.write(BASELINE, base, mode="overwrite")
