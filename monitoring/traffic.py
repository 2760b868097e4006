"""Logging served traffic into the inference table, in the contract's column names.

* :func:`log_traffic` appends served requests (features, prediction, probability, model id,
  timestamp, request id); rows without predictions are scored with the champion.
* :func:`log_labels` merges late labels into rows already logged, by request id (a Delta
  MERGE: ``deltalake`` locally, Spark ``MERGE INTO`` through the table store on Databricks).
* :func:`unpack_serving_payload` turns rows of a Databricks Model Serving inference (payload)
  table, one row per HTTP request with JSON ``request`` / ``response`` bodies, into one row
  per scored record in the inference-log shape. Pure; ``log_serving_payload`` reads and appends.

The column roles always come from ``monitor.inference_log`` (:class:`InferenceColumns`).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from driftgate.core.errors import ConfigError, TableError
from driftgate.monitoring.config import InferenceColumns

__all__ = ["served_rows", "log_traffic", "log_labels", "unpack_serving_payload", "log_serving_payload",
           "read_rows"]

logger = logging.getLogger(__name__)


def read_rows(path) -> pd.DataFrame:
    """A CSV, Parquet or JSON-lines file as a frame (by suffix)."""
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return pd.read_json(path, lines=suffix != ".json")
    raise ConfigError(f"{path}: expected a .csv, .parquet or .jsonl file, got {suffix or 'no suffix'!r}")


def served_rows(frame: pd.DataFrame, cols: InferenceColumns, *, model_id: str | None = None,
                score: Callable[[pd.DataFrame], np.ndarray] | None = None, threshold: float = 0.5,
                now: pd.Timestamp | None = None) -> pd.DataFrame:
    """``frame`` completed into the inference-log shape (pure apart from ``score``).

    Missing roles are filled: the model id from ``model_id``; the probability (and the
    prediction, at ``threshold``) from ``score`` when the frame has no prediction; a NULL label;
    a new request id; ``now`` as the timestamp. Timestamps are parsed as UTC.

    Raises:
        ConfigError: no prediction and nothing to score with, or no model id.
    """
    out = frame.copy()
    if cols.model_id not in out:
        if model_id is None:
            raise ConfigError(f"served rows: no column {cols.model_id!r} (monitor.inference_log.model_id_col) and "
                              "no model version to record; pass the version that served them")
        out[cols.model_id] = str(model_id)
    out[cols.model_id] = out[cols.model_id].astype(str)
    if cols.prediction not in out:
        if score is None:
            raise ConfigError(f"served rows: no column {cols.prediction!r} (monitor.inference_log.prediction_col) "
                              "and no champion to score them with")
        proba = np.asarray(score(out), dtype=float)
        if cols.probability:
            out[cols.probability] = proba
        out[cols.prediction] = (proba >= threshold).astype("int64")
    if cols.label and cols.label not in out:
        out[cols.label] = pd.array([pd.NA] * len(out), dtype="Int64")
    if cols.request_id and cols.request_id not in out:
        out[cols.request_id] = [uuid.uuid4().hex for _ in range(len(out))]
    if cols.timestamp not in out:
        out[cols.timestamp] = now if now is not None else pd.Timestamp.now(tz="UTC")
    out[cols.timestamp] = pd.to_datetime(out[cols.timestamp], utc=True).astype("datetime64[us, UTC]")
    return out


def _aligned(ws, name: str, frame: pd.DataFrame) -> pa.Table:
    """``frame`` as Arrow, cast to the existing table's schema when there is one (same columns)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if not ws.tables.exists(name):
        return table
    schema = ws.tables.schema(name) if hasattr(ws.tables, "schema") else ws.tables.read(name).schema
    missing = [f.name for f in schema if f.name not in table.column_names]
    extra = [c for c in table.column_names if c not in schema.names]
    if missing or extra:
        raise TableError(f"{name}: the rows do not match the table's columns (missing {missing}, unexpected "
                         f"{extra})", table=name)
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TableError(f"{name}: the rows' types do not match the table's: {exc}", table=name) from exc


def _champion_scorer(ws):
    from driftgate.monitoring.contract import model_input_columns
    from driftgate.promotion.replay import load_scorer, model_inputs

    name = ws.settings.project.model_name
    version = ws.registry.alias_version(name, "champion")
    if version is None:
        return None, None
    ws.activate_mlflow()
    uri = f"models:/{name}/{version}"
    columns = [c for c, _ in (model_inputs(uri) or [])] or model_input_columns(ws.settings)
    return version, load_scorer(uri, columns, ws.settings.project.problem_type).probability


def log_traffic(ws, frame: pd.DataFrame, *, model_version: str | None = None) -> int:
    """Append served requests to the inference table; returns the rows appended.

    Rows without a prediction column are scored with the champion (their model id is the
    champion's version); otherwise ``model_version`` (or the rows' own model-id column) says
    which version served them.
    """
    from driftgate.workspace.audit import record_event

    cols = ws.settings.monitor.columns
    score = None
    if cols.prediction not in frame:
        champion, score = _champion_scorer(ws)
        model_version = model_version or champion
    rows = served_rows(frame, cols, model_id=model_version, score=score,
                       threshold=ws.settings.promotion.decision_threshold)
    table = ws.settings.project.inference_table
    ws.tables.write(table, _aligned(ws, table, rows), mode="append")
    record_event(ws, "traffic_logged", subject=table, status="appended",
                 details={"rows": len(rows), "model_ids": sorted(rows[cols.model_id].unique().tolist())})
    return len(rows)


def log_labels(ws, frame: pd.DataFrame) -> int:
    """Merge late labels into the inference table by request id; returns the rows matched."""
    from driftgate.workspace.audit import record_event

    cols = ws.settings.monitor.columns
    table = ws.settings.project.inference_table
    if not cols.request_id or not cols.label:
        raise ConfigError("log labels: needs monitor.inference_log.request_id_col and label_col, got "
                          f"request_id_col={cols.request_id!r}, label_col={cols.label!r}")
    missing = [c for c in (cols.request_id, cols.label) if c not in frame]
    if missing:
        raise ConfigError(f"log labels: the rows lack the column(s) {missing} (the contract's request id and label)")
    if not ws.tables.exists(table):
        raise TableError(f"{table}: the inference table does not exist; log the served traffic first", table=table)
    labels = frame[[cols.request_id, cols.label]].dropna(subset=[cols.label]).drop_duplicates(cols.request_id, keep="last")
    schema = ws.tables.schema(table) if hasattr(ws.tables, "schema") else ws.tables.read(table).schema
    source = pa.Table.from_pandas(labels, preserve_index=False).cast(
        pa.schema([schema.field(cols.request_id), schema.field(cols.label)]))
    matched = ws.tables.merge(table, source, on=cols.request_id, update=[cols.label])
    record_event(ws, "labels_logged", subject=table, status="merged",
                 details={"rows": len(labels), "matched": matched})
    return matched


# --------------------------------------------------------------------------- Model Serving payloads


def _records(request: Any) -> list[dict[str, Any]]:
    """The scored records of one serving request body (``dataframe_split``, ``dataframe_records``,
    ``instances`` or ``inputs`` as records)."""
    body = json.loads(request) if isinstance(request, str | bytes) else request
    if not isinstance(body, dict):
        raise ValueError(f"request body must be a JSON object, got {type(body).__name__}")
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        return [dict(zip(split["columns"], row)) for row in split["data"]]
    for key in ("dataframe_records", "instances", "inputs"):
        if key in body:
            value = body[key]
            if isinstance(value, dict):  # column-oriented {"col": [v1, v2]}
                keys = list(value)
                return [dict(zip(keys, row)) for row in zip(*(value[k] for k in keys))]
            if all(isinstance(r, dict) for r in value):
                return list(value)
            raise ValueError(f"request {key!r} holds unnamed rows; send named columns")
    raise ValueError(f"request body has none of dataframe_split, dataframe_records, instances, inputs "
                     f"(keys: {sorted(body)})")


def _predictions(response: Any) -> list[Any]:
    body = json.loads(response) if isinstance(response, str | bytes) else response
    preds = body.get("predictions") if isinstance(body, dict) else body
    if preds is None:
        raise ValueError("response body has no 'predictions'")
    return list(preds)


def _probability(pred: Any) -> float | None:
    if isinstance(pred, dict):
        for key in ("probability", "score", "proba"):
            if key in pred:
                return _probability(pred[key])
        return None
    if isinstance(pred, list | tuple):
        return float(pred[-1]) if pred else None  # [P(0), P(1)]: the positive class
    return float(pred)


def unpack_serving_payload(rows: list[dict[str, Any]], cols: InferenceColumns, *, model_id: str | None = None,
                           threshold: float = 0.5, response_is_probability: bool = True) -> pd.DataFrame:
    """Rows of a Model Serving inference table → the inference-log shape, one row per record.

    Each payload row is one HTTP request: ``request`` and ``response`` are JSON bodies (a batch
    of records and its ``predictions``). Timestamps come from ``request_time`` (AI Gateway
    tables) or ``timestamp_ms`` (epoch milliseconds); the request id from ``databricks_request_id``
    (or ``request_id`` / ``client_request_id``) plus the record's index in the batch; the model id
    from ``request_metadata['model_version']`` or ``served_entity_id`` (``model_id`` overrides).
    Rows whose ``status_code`` is not 200 were not served and are skipped.

    ``response_is_probability``: a numeric prediction is P(class 1) (a ``predict_proba``-style
    pyfunc), and the class is ``probability >= threshold``; False: it is the class itself.
    """
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        status = row.get("status_code")
        if status is not None and int(status) != 200:
            continue
        try:
            records, preds = _records(row["request"]), _predictions(row["response"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"payload row {i}: {exc}") from None
        if len(records) != len(preds):
            raise ValueError(f"payload row {i}: {len(records)} records but {len(preds)} predictions")
        if row.get("request_time") is not None:
            stamp = pd.Timestamp(row["request_time"])
        else:
            stamp = pd.Timestamp(int(row["timestamp_ms"]), unit="ms")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        rid = row.get("databricks_request_id") or row.get("request_id") or row.get("client_request_id") or f"row{i}"
        meta = row.get("request_metadata") or {}
        meta = dict(meta) if not isinstance(meta, dict) else meta
        served_by = model_id or meta.get("model_version") or row.get("served_entity_id")
        if served_by is None:
            raise ValueError(f"payload row {i}: no model version (request_metadata.model_version or "
                             "served_entity_id); pass model_id")
        for j, (record, pred) in enumerate(zip(records, preds)):
            item = dict(record)
            proba = _probability(pred) if response_is_probability else None
            if proba is not None:
                if cols.probability:
                    item[cols.probability] = proba
                item[cols.prediction] = int(proba >= threshold)
            else:
                item[cols.prediction] = int(pred if not isinstance(pred, dict) else pred.get("prediction"))
            item[cols.timestamp] = stamp
            item[cols.model_id] = str(served_by)
            if cols.request_id:
                item[cols.request_id] = f"{rid}-{j}" if len(records) > 1 else str(rid)
            out.append(item)
    frame = pd.DataFrame(out)
    if cols.label and len(frame) and cols.label not in frame:
        frame[cols.label] = pd.array([pd.NA] * len(frame), dtype="Int64")
    if len(frame):
        frame[cols.timestamp] = pd.to_datetime(frame[cols.timestamp], utc=True).astype("datetime64[us, UTC]")
    return frame


def log_serving_payload(ws, source_table: str, *, since_ms: int | None = None, model_id: str | None = None) -> int:
    """Read a Model Serving payload table, unpack it and append it to the inference table."""
    filters = [("timestamp_ms", ">", since_ms)] if since_ms is not None else None
    rows = ws.tables.read(source_table, filters=filters).to_pylist()
    frame = unpack_serving_payload(rows, ws.settings.monitor.columns, model_id=model_id,
                                   threshold=ws.settings.promotion.decision_threshold)
    if frame.empty:
        return 0
    return log_traffic(ws, frame)
