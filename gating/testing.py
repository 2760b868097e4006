"""Synthetic metric rows of the documented drift/profile table schemas.

For tests and benchmarks of the gate (and anyone who needs metric rows without running
a monitor), in the spirit of Dagster's ``build_sensor_context``: the same columns and
types as ``<table>_drift_metrics`` / ``<table>_profile_metrics`` of a classification
monitor whose model id column is ``model_id``, from their one definition
(:mod:`driftgate.core.metric_tables`; column reference in docs/tables.md).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pyarrow as pa

from driftgate.core import metric_tables

__all__ = ["DRIFT_SCHEMA", "PROFILE_SCHEMA", "drift_rows", "profile_rows", "day"]

DRIFT_SCHEMA = metric_tables.drift_schema("model_id")
PROFILE_SCHEMA = metric_tables.profile_schema("model_id", "classification")


def day(n: int, start: datetime = datetime(2026, 6, 1, tzinfo=timezone.utc)) -> datetime:
    """Midnight UTC of day ``n`` after ``start``."""
    return start + timedelta(days=n)


def drift_rows(
    days: int | list[int],
    columns: list[str],
    value: Callable[[int, str], dict[str, Any] | float | None],
    *,
    metric: str = "population_stability_index",
    drift_type: str = "BASELINE",
    model_id: str = "*",
    slice_key: str | None = None,
    slice_value: str | None = None,
    granularity: str = "1 day",
) -> pa.Table:
    """Drift rows, one per day and column; ``value(day, column)`` gives the metric value
    (or a dict of column → value to set several metrics)."""
    rows = []
    for d in (range(days) if isinstance(days, int) else days):
        for c in columns:
            v = value(d, c)
            fields = v if isinstance(v, dict) else {metric: v}
            row = {
                "window": {"start": day(d), "end": day(d + 1)},
                "granularity": granularity, "model_id": model_id, "monitor_version": 1,
                "slice_key": slice_key, "slice_value": slice_value, "column_name": c, "data_type": "double",
                "window_cmp": {"start": day(d - 1), "end": day(d)}, "drift_type": drift_type,
            }
            row.update(fields)
            rows.append(row)
    return pa.Table.from_pylist(rows, schema=DRIFT_SCHEMA)


def profile_rows(
    days: int | list[int],
    *,
    count: int | Callable[[int], int | None] = 600,
    f1: float | Callable[[int], float | None] | None = 0.8,
    model_id: str = "*",
    slice_key: str | None = None,
    slice_value: str | None = None,
    extra: Callable[[int], dict[str, Any]] | None = None,
    granularity: str = "1 day",
    log_type: str = "INPUT",
) -> pa.Table:
    """Profile rows on ``:table`` (counts and quality), one per day."""
    rows = []
    for d in (range(days) if isinstance(days, int) else days):
        n = count(d) if callable(count) else count
        f = f1(d) if callable(f1) else f1
        row = {
            "window": {"start": day(d), "end": day(d + 1)}, "log_type": log_type,
            "logging_table_commit_version": d, "monitor_version": 1, "granularity": granularity,
            "model_id": model_id, "slice_key": slice_key, "slice_value": slice_value, "column_name": ":table",
            "count": n, "data_type": None,
            "f1_score": None if f is None else {"macro": f, "weighted": f},
        }
        if extra:
            row.update(extra(d))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=PROFILE_SCHEMA)
