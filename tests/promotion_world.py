"""A tiny champion/challenger world for the promotion tests (no dependency on the demo).

Served traffic follows a *new* concept; v1 (the champion that served it) learnt the
old one, v2 learnt the new one, v3 is v1 again, v4 lacks an input column.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "age"]
CATEGORICAL = ["plan", "region"]
FEATURES = NUMERIC + CATEGORICAL
START = datetime(2026, 6, 1, tzinfo=timezone.utc)

SCHEMA = pa.schema([
    ("request_id", pa.string()), ("customer_id", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")),
    ("model_id", pa.string()), ("prediction", pa.int64()), ("probability", pa.float64()), ("label", pa.int64()),
    ("tenure_months", pa.float64()), ("monthly_charges", pa.float64()), ("support_calls", pa.int64()),
    ("usage_gb", pa.float64()), ("age", pa.int64()), ("plan", pa.string()), ("region", pa.string()),
    ("senior", pa.bool_()),
])


def features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    age = rng.integers(18, 90, n)
    return pd.DataFrame({
        "tenure_months": rng.gamma(2.0, 12.0, n), "monthly_charges": rng.normal(60, 20, n),
        "support_calls": rng.poisson(1.5, n).astype("int64"), "usage_gb": rng.gamma(2.0, 10.0, n),
        "age": age.astype("int64"), "plan": rng.choice(["basic", "standard", "premium"], n),
        "region": rng.choice(["north", "south", "east", "west", "central"], n), "senior": age >= 65,
    })


def labels(x: pd.DataFrame, concept: str, rng: np.random.Generator) -> np.ndarray:
    if concept == "old":
        z = -0.08 * x["tenure_months"] + 0.9 * x["support_calls"] - 0.3
    else:  # after drift: charges and usage drive churn
        z = 0.06 * (x["monthly_charges"] - 60) - 0.08 * (x["usage_gb"] - 20) + 0.2 * x["support_calls"] - 0.3
    return (rng.random(len(x)) < 1 / (1 + np.exp(-z))).astype("int64")


def fit(concept: str, seed: int, columns=FEATURES):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    x = features(1500, rng)
    y = labels(x, concept, rng)
    num = [c for c in columns if c in NUMERIC]
    cat = [c for c in columns if c in CATEGORICAL]
    pre = ColumnTransformer([("num", StandardScaler(), num), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
    model = make_pipeline(pre, LogisticRegression(max_iter=500))
    model.fit(x[columns], y)
    return model, x[columns]


def register(ws, model, x: pd.DataFrame) -> str:
    import mlflow
    from mlflow.models import infer_signature

    name = ws.settings.project.model_name
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x.head(50)),
                                        pip_requirements=["scikit-learn"])
    return ws.registry.register(info.model_uri, name).version


def served(model, model_id: str, *, days: int, per_day: int, seed: int, unlabelled_days: int = 1,
           concept: str = "new") -> pa.Table:
    """``days`` days of traffic scored by ``model``; the last ``unlabelled_days`` have no labels yet."""
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(days):
        x = features(per_day, rng)
        x.insert(0, "timestamp", [START + timedelta(days=d, seconds=int(s)) for s in rng.integers(0, 86400, per_day)])
        y = labels(x, concept, rng)
        x["label"] = pd.array(y if d < days - unlabelled_days else [None] * per_day, dtype="Int64")
        frames.append(x)
    frame = pd.concat(frames, ignore_index=True)
    frame["request_id"] = [f"r{seed}-{i}" for i in range(len(frame))]
    frame["customer_id"] = [f"c{i % 500}" for i in range(len(frame))]
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    frame["model_id"] = model_id
    frame["probability"] = proba
    frame["prediction"] = (proba >= 0.5).astype("int64")
    return pa.Table.from_pandas(frame[SCHEMA.names], schema=SCHEMA, preserve_index=False)


def with_settings(ws, **sections):
    """A copy of ``ws`` whose settings sections are updated: ``with_settings(ws, promotion={...})``."""
    settings = ws.settings
    updates = {}
    for section, values in sections.items():
        updates[section] = getattr(settings, section).model_copy(update=values)
    return dataclasses.replace(ws, settings=settings.model_copy(update=updates))


@dataclasses.dataclass
class World:
    ws: object
    v1: str
    v2: str
    v3: str
    v4: str


def build(ws) -> World:
    ws.activate_mlflow()
    m1, x = fit("old", 1)
    m2, _ = fit("new", 2)
    m4, x4 = fit("new", 4, columns=[c for c in FEATURES if c != "usage_gb"])
    v1 = register(ws, m1, x)
    v2 = register(ws, m2, x)
    v3 = register(ws, m1, x)
    v4 = register(ws, m4, x4)
    ws.tables.write(ws.settings.project.inference_table, served(m1, v1, days=7, per_day=150, seed=11),
                    mode="overwrite")
    return World(ws, v1, v2, v3, v4)


def reset_aliases(ws, champion: str | None = None, challenger: str | None = None, previous: str | None = None):
    name = ws.settings.project.model_name
    for alias, version in (("champion", champion), ("challenger", challenger), ("previous_champion", previous)):
        if version is None:
            if ws.registry.alias_version(name, alias) is not None:
                ws.registry.delete_alias(name, alias)
        else:
            ws.registry.set_alias(name, alias, version)
