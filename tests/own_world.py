"""A world that is not the demo: other column names (target, event_time, served_by, score, decision,
rid), no protected column, features x1, x2 and kind read from the training table itself."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 1, tzinfo=timezone.utc)

OWN_CONF = """\
project:
  model_name: main.shop.risk_model
  experiment_name: /Shared/shop/risk_model
  inference_table: main.shop.scored_requests
  audit_schema: main.shop
monitor:
  table_name: main.shop.scored_requests
  output_schema_name: main.shop
  baseline_table_name: main.shop.scored_requests_baseline
  inference_log:
    timestamp_col: event_time
    model_id_col: served_by
    prediction_col: decision
    prediction_proba_col: score
    label_col: target
    request_id_col: rid
training:
  table: main.shop.labelled_requests
  label_col: target
  timestamp_col: event_time
  table_features: [x1, x2, kind]
  calibration: none
"""


def conf_dir(tmp: Path, root: Path, extra: str = "") -> Path:
    """The repo's neutral base layer plus a user layer naming this world (no demo layer)."""
    conf = tmp / "conf"
    shutil.copytree(REPO / "conf" / "base", conf / "base")
    shutil.copytree(REPO / "conf" / "local", conf / "local")
    (conf / "user").mkdir()
    (conf / "user" / "own.yml").write_text(OWN_CONF + f"workspace:\n  root: {root}\n" + extra)
    return conf


def requests(first_day: int, days: int, *, drift_from: int | None = None, rows_per_day: int = 160,
             seed: int = 0) -> pd.DataFrame:
    """Labelled requests of ``days`` days from ``first_day``; from ``drift_from`` on, x1 shifts and
    the label depends on kind instead of x2 (so an old model really gets worse)."""
    frames = []
    for d in range(first_day, first_day + days):
        rng = np.random.default_rng([seed, d])
        n = rows_per_day
        drifted = drift_from is not None and d >= drift_from
        x1 = rng.normal(1.5 if drifted else 0.0, 1.0, n)
        x2 = rng.normal(0.0, 1.0, n)
        kind = rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5] if drifted else [0.5, 0.3, 0.2])
        z = 1.2 * x1 + (2.0 * (kind == "c") - 1.0 if drifted else 1.5 * x2) - (1.5 if drifted else 0.0)
        target = (rng.random(n) < 1 / (1 + np.exp(-z))).astype("int64")
        stamp = pd.Timestamp(START + timedelta(days=d)) + pd.to_timedelta(np.sort(rng.integers(0, 86400, n)), "s")
        frames.append(pd.DataFrame({"rid": [f"r{d:03d}-{i:04d}" for i in range(n)], "event_time": stamp,
                                    "x1": x1, "x2": x2, "kind": kind, "target": target}))
    out = pd.concat(frames, ignore_index=True)
    out["event_time"] = pd.to_datetime(out["event_time"], utc=True).astype("datetime64[us, UTC]")
    return out


def day(n: int) -> datetime:
    return START + timedelta(days=n)
