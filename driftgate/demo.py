"""The demo world: a seeded churn scenario whose drift really warrants retraining.

Customers carry a plan, a region, an age (``senior`` is the protected boolean),
and each day some of them make a request with their current tenure, monthly
charges, support calls and usage. Churn follows a logistic model of those
features. From ``drift_onset_day`` of serving on, two things change over a
three-day ramp, scaled by ``drift_strength``:

* covariates: a price rise (monthly charges up), more support calls, lower usage,
  and more customers on the basic plan;
* the concept P(y | x): customers become price-sensitive, the south region starts
  churning, support calls matter less.

So a model trained on the old regime loses accuracy, and one retrained on recent
data wins: the demo's retraining is warranted, not staged.

Tables written (names fixed in the brief and conf): ``training_set`` (customer_id,
timestamp, label), ``customer_features`` (point-in-time feature rows),
``inference_log`` (what the champion served, with labels once known) and
``inference_baseline`` (the champion's scored validation rows).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "WorldInfo", "NUMERIC_FEATURES", "CATEGORICAL_FEATURES", "PROTECTED", "TABLES",
    "simulate_events", "build_world", "score", "serve_days", "world_start",
]

NUMERIC_FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "age"]
CATEGORICAL_FEATURES = ["plan", "region"]
PROTECTED = "senior"
PLANS = np.array(["basic", "standard", "premium"])
REGIONS = np.array(["north", "south", "east", "west", "central"])
_PLAN_BASE = {"basic": 30.0, "standard": 60.0, "premium": 95.0}


@dataclass(frozen=True)
class Tables:
    training_set: str = "main.driftgate_demo.training_set"
    customer_features: str = "main.driftgate_demo.customer_features"
    inference_log: str = "main.driftgate_demo.inference_log"
    inference_baseline: str = "main.driftgate_demo.inference_baseline"


TABLES = Tables()


@dataclass(frozen=True)
class WorldInfo:
    start: datetime
    history_end: datetime
    drift_onset: datetime
    rows_history: int


def world_start(cfg, today: datetime | None = None) -> datetime:
    """The first simulated day: explicit ``demo.start_date`` or so that serving ends today."""
    if cfg.start_date:
        return datetime.fromisoformat(cfg.start_date).replace(tzinfo=timezone.utc)
    today = (today or datetime.now(timezone.utc)).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=cfg.history_days + cfg.served_days - 1)


class _Population:
    """Static customer attributes, drawn once from the seed."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.ids = np.array([f"C{i:06d}" for i in range(n)])
        self.age = rng.integers(18, 86, size=n)
        self.region = rng.choice(REGIONS, size=n, p=[0.25, 0.2, 0.2, 0.2, 0.15])
        self.plan = rng.choice(PLANS, size=n, p=[0.35, 0.4, 0.25])
        self.tenure0 = rng.gamma(2.0, 12.0, size=n)


def _drift(day: int, onset: int | None, strength: float) -> float:
    """0 before the onset, ramping to ``strength`` over three days."""
    if onset is None or day < onset:
        return 0.0
    return strength * min(1.0, (day - onset + 1) / 3.0)


def simulate_events(cfg, *, first_day: int, days: int, drift_onset: int | None,
                    start: datetime, seed_offset: int = 0) -> pd.DataFrame:
    """Requests of ``days`` days starting at day index ``first_day`` (0 = world start).

    Deterministic: the same config, days and offset give the same rows.
    """
    pop = _Population(cfg.customers, np.random.default_rng(cfg.seed))
    frames = []
    for day in range(first_day, first_day + days):
        rng = np.random.default_rng([cfg.seed, seed_offset, day])
        d = _drift(day, drift_onset, cfg.drift_strength)
        n = int(rng.poisson(cfg.rows_per_day))
        idx = rng.integers(0, cfg.customers, size=n)
        plan = pop.plan[idx].copy()
        switch = rng.random(n) < 0.25 * d
        plan[switch] = "basic"
        base = np.vectorize(_PLAN_BASE.get)(plan).astype(float)
        charges = base * (1.0 + 0.25 * d) + rng.normal(0, 6, size=n)
        calls = rng.poisson(1.0 + 1.2 * d, size=n)
        usage = rng.lognormal(np.log(40.0) - 0.35 * d, 0.5, size=n)
        tenure = pop.tenure0[idx] + day / 30.0
        age = pop.age[idx]
        senior = age >= 65
        region = pop.region[idx]
        logit = (
            0.6
            - 0.06 * tenure
            + (0.045 + 0.06 * d) * (charges - 60.0)
            + (0.7 - 0.45 * d) * calls
            - 0.03 * usage
            + 0.8 * (plan == "basic")
            + 0.15 * senior
            + 1.6 * d * (region == "south")
        )
        label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        seconds = np.sort(rng.integers(0, 86400, size=n))
        ts = pd.Timestamp(start) + pd.Timedelta(days=day) + pd.to_timedelta(seconds, unit="s")
        frames.append(pd.DataFrame({
            "request_id": [f"R{seed_offset}-{day:04d}-{i:05d}" for i in range(n)],
            "customer_id": pop.ids[idx],
            "timestamp": ts,
            "tenure_months": tenure.round(2),
            "monthly_charges": charges.round(2),
            "support_calls": calls.astype(np.int64),
            "usage_gb": usage.round(3),
            "age": age.astype(np.int64),
            "plan": plan,
            "region": region,
            "senior": senior,
            "label": label,
        }))
    out = pd.concat(frames, ignore_index=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True).astype("datetime64[us, UTC]")
    return out


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def write_training_data(ws, events: pd.DataFrame, *, mode: str = "append") -> None:
    """Append labelled events as training labels and point-in-time feature rows (the tables conf names)."""
    training = ws.settings.training
    lookups = training.feature_lookups
    features = events[["customer_id", "timestamp", *NUMERIC_FEATURES, *CATEGORICAL_FEATURES, PROTECTED]]
    ws.tables.write(lookups[0].table_name if lookups else TABLES.customer_features, _arrow(features), mode=mode)
    labels = events[["customer_id", "timestamp", "label"]].rename(
        columns={"timestamp": training.timestamp_col, "label": training.label_col})
    ws.tables.write(training.table, _arrow(labels), mode=mode)


def build_world(ws, *, today: datetime | None = None) -> WorldInfo:
    """Write the history (before the champion ships) as training set and feature table."""
    cfg = ws.settings.demo
    start = world_start(cfg, today)
    history = simulate_events(cfg, first_day=0, days=cfg.history_days, drift_onset=None, start=start)
    write_training_data(ws, history, mode="overwrite")
    return WorldInfo(
        start=start,
        history_end=start + timedelta(days=cfg.history_days),
        drift_onset=start + timedelta(days=cfg.history_days + cfg.drift_onset_day),
        rows_history=len(history),
    )


def score(model, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, P(label = 1)) from a logged scikit-learn classifier.

    The prediction is the model's own ``predict`` so that a decision threshold
    chosen at training time is the one that serves.
    """
    cols = [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    x = frame[cols]
    return np.asarray(model.predict(x), dtype=np.int64), np.asarray(model.predict_proba(x)[:, 1], dtype=float)


def served_frame(events: pd.DataFrame, scored: tuple[np.ndarray, np.ndarray], model_id: str,
                 columns=None) -> pd.DataFrame:
    """The served rows in the inference-table contract's column names (``columns``: the monitor's
    :class:`~driftgate.monitoring.config.InferenceColumns`; default the conventional names)."""
    prediction, proba = scored
    out = events.copy()
    out.insert(3, "model_id", model_id)
    out.insert(4, "prediction", prediction)
    out.insert(5, "probability", proba)
    if columns is None:
        return out
    names = {"timestamp": columns.timestamp, "model_id": columns.model_id, "prediction": columns.prediction,
             "probability": columns.probability, "label": columns.label, "request_id": columns.request_id}
    dropped = [k for k, v in names.items() if v is None]
    return out.drop(columns=dropped).rename(columns={k: v for k, v in names.items() if v})


def serve_days(ws, model, model_id: str, *, first_served_day: int, days: int, world: WorldInfo,
               label_delay_days: int = 0) -> pd.DataFrame:
    """Serve ``days`` days with ``model``: append to the inference log and training data.

    Labels of the last ``label_delay_days`` days stay NULL in the inference log
    (they have not arrived yet) and are withheld from the training data.
    """
    cfg = ws.settings.demo
    events = simulate_events(
        cfg, first_day=cfg.history_days + first_served_day, days=days,
        drift_onset=cfg.history_days + cfg.drift_onset_day, start=world.start, seed_offset=1,
    )
    cols = ws.settings.monitor.columns
    served = served_frame(events, score(model, events), model_id, cols)
    if label_delay_days:
        cutoff = world.start + timedelta(days=cfg.history_days + first_served_day + days - label_delay_days)
        late = (events["timestamp"] >= pd.Timestamp(cutoff)).to_numpy()
        if cols.label:
            served[cols.label] = served[cols.label].astype("Int64").mask(late)
        events = events[~late]
    ws.tables.write(ws.settings.project.inference_table, _arrow(served), mode="append")
    write_training_data(ws, events)
    return served
