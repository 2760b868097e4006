"""Small synthetic inference logs for the monitor tests (no dependency on the demo)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
TS = pa.timestamp("us", tz="UTC")


def inference_log(days: int, rows_per_day: int = 200, *, seed: int = 0, start: datetime = START,
                  drift_from: int | None = None, model_id: str = "1", label_fraction: float = 1.0) -> pa.Table:
    """The demo's inference-log schema with optional drift from day ``drift_from``."""
    rng = np.random.default_rng(seed)
    n = days * rows_per_day
    day = np.repeat(np.arange(days), rows_per_day)
    shift = np.where(day >= drift_from, 1.0, 0.0) if drift_from is not None else np.zeros(n)
    seconds = rng.integers(0, 86_400, n)
    ts = [start + timedelta(days=int(d), seconds=int(s)) for d, s in zip(day, seconds)]
    tenure = rng.gamma(2.0, 12.0, n) + 10 * shift
    charges = rng.normal(70, 20, n) + 15 * shift
    senior = rng.random(n) < 0.2
    plan_p = np.where(shift[:, None] > 0, [0.2, 0.3, 0.5], [0.5, 0.3, 0.2])
    plan = np.array(["basic", "standard", "premium"])[(rng.random(n)[:, None] > plan_p.cumsum(1)).sum(1)]
    logit = -1 + 0.03 * (charges - 70) - 0.02 * tenure + 0.5 * senior
    prob = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < prob).astype(np.int64)
    pred = (prob > 0.5).astype(np.int64)
    labels = pa.array(label, mask=rng.random(n) >= label_fraction)
    return pa.table({
        "request_id": [f"r{i}" for i in range(n)],
        "customer_id": [f"c{i % 500}" for i in range(n)],
        "timestamp": pa.array(ts, TS),
        "model_id": [model_id] * n,
        "prediction": pa.array(pred, pa.int64()),
        "probability": prob,
        "label": labels,
        "tenure_months": tenure,
        "monthly_charges": charges,
        "support_calls": rng.poisson(1.5 + shift, n).astype(np.int64),
        "usage_gb": rng.lognormal(3, 0.5, n),
        "age": rng.integers(18, 90, n).astype(np.int64),
        "plan": plan,
        "region": np.array(["north", "south", "east", "west", "central"])[rng.integers(0, 5, n)],
        "senior": senior,
    })
