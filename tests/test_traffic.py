"""Logging served traffic and late labels into the inference table, in the contract's names."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftgate.core.errors import ConfigError
from driftgate.monitoring.config import InferenceColumns
from driftgate.monitoring.traffic import served_rows, unpack_serving_payload

COLS = InferenceColumns(timestamp="event_time", prediction="predicted", model_id="served_by", label="target",
                        probability="score", request_id="rid")

# Two rows of a Model Serving inference (payload) table, as the documentation lays them out:
# the custom-model table (databricks_request_id, client_request_id, date, timestamp_ms, status_code,
# sampling_fraction, execution_time_ms, request, response, request_metadata with endpoint_name /
# model_name / model_version) with a `dataframe_split` batch of two records, and a failed request.
LEGACY = [
    {"databricks_request_id": "0a1b-77", "client_request_id": None, "date": "2026-06-02",
     "timestamp_ms": 1780401600000, "status_code": 200, "sampling_fraction": 1.0, "execution_time_ms": 12,
     "request": json.dumps({"dataframe_split": {"columns": ["x1", "plan_kind"], "data": [[0.5, "a"], [1.5, "b"]]}}),
     "response": json.dumps({"predictions": [0.12, 0.87]}),
     "request_metadata": {"endpoint_name": "scorer", "model_name": "main.default.model", "model_version": "3"}},
    {"databricks_request_id": "0a1b-78", "client_request_id": None, "date": "2026-06-02",
     "timestamp_ms": 1780401660000, "status_code": 500, "sampling_fraction": 1.0, "execution_time_ms": 3,
     "request": json.dumps({"dataframe_records": [{"x1": 9.0, "plan_kind": "c"}]}),
     "response": json.dumps({"error_code": "INTERNAL_ERROR"}),
     "request_metadata": {"endpoint_name": "scorer", "model_name": "main.default.model", "model_version": "3"}},
]
# An AI-Gateway-enabled table row: request_time, served_entity_id, records as `dataframe_records`,
# predictions as [P(0), P(1)] pairs.
GATEWAY = [
    {"request_date": "2026-06-03", "databricks_request_id": "ff-1", "client_request_id": "mine-1",
     "request_time": "2026-06-03T10:00:00Z", "status_code": 200, "sampling_fraction": 1.0,
     "execution_duration_ms": 9, "request": json.dumps({"dataframe_records": [{"x1": 2.0, "plan_kind": "a"}]}),
     "response": json.dumps({"predictions": [[0.3, 0.7]]}), "served_entity_id": "model-v4"},
]


def test_unpacks_a_serving_payload_batch_into_one_row_per_record():
    frame = unpack_serving_payload(LEGACY, COLS)
    assert list(frame["rid"]) == ["0a1b-77-0", "0a1b-77-1"]  # the 500 was not served
    assert list(frame["x1"]) == [0.5, 1.5] and list(frame["plan_kind"]) == ["a", "b"]
    assert list(frame["score"]) == [0.12, 0.87] and list(frame["predicted"]) == [0, 1]
    assert set(frame["served_by"]) == {"3"}
    assert frame["event_time"].iloc[0] == pd.Timestamp("2026-06-02T12:00:00Z")
    assert frame["target"].isna().all()


def test_unpacks_the_gateway_layout_and_class_responses():
    frame = unpack_serving_payload(GATEWAY, COLS)
    assert frame.loc[0, "score"] == 0.7 and frame.loc[0, "predicted"] == 1 and frame.loc[0, "served_by"] == "model-v4"
    assert frame.loc[0, "rid"] == "ff-1" and frame.loc[0, "event_time"] == pd.Timestamp("2026-06-03T10:00:00Z")
    classes = unpack_serving_payload([{**GATEWAY[0], "response": json.dumps({"predictions": [1]})}], COLS,
                                     response_is_probability=False, model_id="4")
    assert classes.loc[0, "predicted"] == 1 and "score" not in classes and classes.loc[0, "served_by"] == "4"


def test_a_payload_whose_predictions_do_not_match_its_records_is_refused():
    bad = [{**LEGACY[0], "response": json.dumps({"predictions": [0.1]})}]
    with pytest.raises(ValueError, match="payload row 0: 2 records but 1 predictions"):
        unpack_serving_payload(bad, COLS)


def test_served_rows_fill_the_missing_roles():
    raw = pd.DataFrame({"x1": [0.1, 0.9], "event_time": ["2026-06-01T00:00:00Z", "2026-06-01T01:00:00Z"]})
    out = served_rows(raw, COLS, model_id="2", score=lambda f: f["x1"].to_numpy(), threshold=0.5)
    assert list(out["predicted"]) == [0, 1] and list(out["score"]) == [0.1, 0.9]
    assert set(out["served_by"]) == {"2"} and out["target"].isna().all() and out["rid"].nunique() == 2
    with pytest.raises(ConfigError, match="no champion to score them with"):
        served_rows(raw, COLS, model_id="2")
    with pytest.raises(ConfigError, match="no model version to record"):
        served_rows(raw.assign(predicted=1), COLS)


@pytest.fixture
def own_ws(tmp_path):
    from driftgate.core.settings import load_settings
    from driftgate.workspace import open_workspace
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    return open_workspace(load_settings(repo / "conf", "local", (
        f"workspace.root={tmp_path}", "monitor.inference_log.timestamp_col=event_time",
        "monitor.inference_log.label_col=target", "monitor.inference_log.model_id_col=served_by",
        "monitor.inference_log.prediction_proba_col=score", "monitor.inference_log.prediction_col=predicted",
        "monitor.inference_log.request_id_col=rid", "training.table_features=[x1]")))


def test_log_traffic_appends_and_log_labels_merges_by_request_id(own_ws):
    from driftgate.monitoring.traffic import log_labels, log_traffic
    from driftgate.workspace.audit import read_events

    ws = own_ws
    rows = pd.DataFrame({"rid": ["a", "b", "c"], "x1": [0.1, 0.2, 0.3], "predicted": [0, 0, 1],
                         "score": [0.1, 0.2, 0.7], "event_time": pd.to_datetime(["2026-06-01"] * 3, utc=True)})
    assert log_traffic(ws, rows, model_version="1") == 3
    assert log_labels(ws, pd.DataFrame({"rid": ["b", "c", "zz"], "target": [1, 0, 1]})) == 2
    table = ws.tables.read(ws.settings.project.inference_table).to_pandas().sort_values("rid")
    assert table["target"].tolist()[1:] == [1, 0] and pd.isna(table["target"].iloc[0])
    assert set(table["served_by"]) == {"1"}
    # Labels that arrive again overwrite (a correction), never duplicate rows.
    assert log_labels(ws, pd.DataFrame({"rid": ["c"], "target": [1]})) == 1
    again = ws.tables.read(ws.settings.project.inference_table).to_pandas()
    assert len(again) == 3 and again.set_index("rid").loc["c", "target"] == 1
    kinds = [e["kind"] for e in read_events(ws, ["traffic_logged", "labels_logged"])]
    assert sorted(kinds) == ["labels_logged", "labels_logged", "traffic_logged"]


def test_rows_that_do_not_match_the_table_are_refused(own_ws):
    from driftgate.core.errors import TableError
    from driftgate.monitoring.traffic import log_traffic

    ws = own_ws
    rows = pd.DataFrame({"rid": ["a"], "x1": [0.1], "predicted": [0], "score": [0.1],
                         "event_time": pd.to_datetime(["2026-06-01"], utc=True)})
    log_traffic(ws, rows, model_version="1")
    with pytest.raises(TableError, match=r"unexpected \['x2'\]"):
        log_traffic(ws, rows.assign(x2=np.ones(1)), model_version="1")


def test_champion_baseline_policy_takes_the_new_champions_labelled_shadow_rows(own_ws):
    from types import SimpleNamespace

    from driftgate.promotion.bootstrap import refresh_baseline
    from driftgate.promotion.replay import shadow_table_name
    from driftgate.workspace.audit import read_events

    ws = own_ws
    shadow = pd.DataFrame({"rid": ["a", "b", "c", "d"], "x1": [0.1, 0.2, 0.3, 0.4], "predicted": [0, 1, 1, 0],
                           "score": [0.2, 0.6, 0.7, 0.1], "target": pd.array([0, 1, None, 0], dtype="Int64"),
                           "served_by": ["2", "2", "2", "3"],
                           "event_time": pd.to_datetime(["2026-06-01"] * 4, utc=True)})
    import pyarrow as pa

    ws.tables.write(shadow_table_name(ws), pa.Table.from_pandas(shadow, preserve_index=False))
    assert refresh_baseline(ws, "2", SimpleNamespace(shadow_table=shadow_table_name(ws))) == 2
    base = ws.settings.monitor.baseline_table_name
    assert sorted(ws.tables.read(base).column("rid").to_pylist()) == ["a", "b"]
    assert ws.tables.commit_metadata(base)["driftgate.baseline_version"] == "2"
    assert read_events(ws, ["baseline_refresh"])[0]["status"] == "refreshed"
    # Nothing to take: the old baseline stays, and the failure is recorded (the promotion stands).
    assert refresh_baseline(ws, "9", SimpleNamespace(shadow_table=shadow_table_name(ws))) == 0
    assert read_events(ws, ["baseline_refresh"])[0]["status"] == "failed"
    assert ws.tables.read(base).num_rows == 2
