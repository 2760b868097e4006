"""The one definition of the monitor's metric tables: Arrow schemas and what each column is.

``<table>_profile_metrics`` and ``<table>_drift_metrics`` have the column names, types and
meanings of Databricks Data Profiling (Lakehouse Monitoring); ``docs/tables.md`` explains
every column. The monitor's engines write these schemas (:func:`profile_schema`,
:func:`drift_schema`), the gate checks its rules against :func:`metric_columns`, and the
gate's test rows (``driftgate.gating.testing``) are built from them, so a column added here
reaches all three (``tests/test_metric_tables.py`` checks the engine and the docs).
"""
from __future__ import annotations

from enum import StrEnum
from typing import Literal, Sequence

import pyarrow as pa

__all__ = [
    "Role", "TIMESTAMP", "WINDOW", "STAT_TEST", "CLASS_METRIC", "FAIRNESS_COLUMNS", "MAP_COLUMNS",
    "ROLES", "TABLE_COLUMN", "IMPORTANCE_COLUMN", "ESTIMATED_METRICS", "ESTIMATE_COLUMNS", "profile_schema", "drift_schema", "metric_columns", "column_kind",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
WINDOW = pa.struct([("start", TIMESTAMP), ("end", TIMESTAMP)])
STAT_TEST = pa.struct([("statistic", pa.float64()), ("pvalue", pa.float64())])
CLASS_METRIC = pa.struct([("one_vs_all", pa.map_(pa.string(), pa.float64())), ("macro", pa.float64()),
                          ("weighted", pa.float64())])
FAIRNESS_COLUMNS = ("predictive_parity", "predictive_equality", "equal_opportunity", "statistical_parity")
TABLE_COLUMN = ":table"
"""``column_name`` of the table-level rows (row count, model quality, fairness)."""
IMPORTANCE_COLUMN = ":importance_weighted"
"""``column_name`` of the drift rows holding the champion-importance-weighted drift of the features."""
ESTIMATED_METRICS = ("roc_auc", "accuracy", "f1")
"""Metrics estimated from served probabilities before labels arrive (``monitoring/estimate.py``)."""
ESTIMATE_COLUMNS = tuple(f"estimated_{m}{part}" for m in ESTIMATED_METRICS for part in ("", "_lower", "_upper"))
"""Profile columns ``estimated_<metric>`` and its 95% band ``_lower`` / ``_upper`` (binary classification)."""

ProblemType = Literal["classification", "regression"]
TableKind = Literal["profile", "drift"]


class Role(StrEnum):
    """What a column is for: rows are identified by ``KEY`` columns, ``BOOKKEEPING`` columns
    drive incremental refresh, ``METRIC`` columns hold values a gate rule may read."""

    KEY = "key"
    BOOKKEEPING = "bookkeeping"
    METRIC = "metric"


ROLES: dict[str, Role] = {
    **{c: Role.KEY for c in ("window", "window_cmp", "granularity", "slice_key", "slice_value", "column_name",
                             "data_type", "drift_type", "log_type")},
    **{c: Role.BOOKKEEPING for c in ("monitor_version", "logging_table_commit_version")},
}
"""Columns that are not metrics; every other column (the model id column aside) is a metric."""

_PROFILE_HEAD = [
    ("window", WINDOW), ("log_type", pa.string()), ("logging_table_commit_version", pa.int32()),
    ("monitor_version", pa.int64()), ("granularity", pa.string()),
]
_PROFILE_BODY = [
    ("slice_key", pa.string()), ("slice_value", pa.string()), ("column_name", pa.string()),
    ("count", pa.int64()), ("data_type", pa.string()), ("num_nulls", pa.int64()), ("avg", pa.float64()),
    ("quantiles", pa.list_(pa.float64())), ("min", pa.float64()), ("max", pa.float64()),
    ("stddev", pa.float64()), ("num_zeros", pa.int64()), ("num_nan", pa.int64()),
    ("min_length", pa.float64()), ("max_length", pa.float64()), ("avg_length", pa.float64()),
    ("non_null_columns", pa.list_(pa.string())),
    ("frequent_items", pa.list_(pa.struct([("item", pa.string()), ("count", pa.int64())]))),
    ("median", pa.float64()), ("distinct_count", pa.int64()), ("percent_nan", pa.float64()),
    ("percent_null", pa.float64()), ("percent_zeros", pa.float64()), ("percent_distinct", pa.float64()),
]
_CLASSIFICATION = [
    ("labeled_count", pa.int64()), ("accuracy_score", pa.float64()), ("precision", CLASS_METRIC),
    ("recall", CLASS_METRIC), ("f1_score", CLASS_METRIC),
    ("confusion_matrix", pa.list_(pa.struct([("prediction", pa.string()), ("label", pa.string()),
                                             ("count", pa.int64())]))),
    ("roc_auc_score", pa.float64()), ("log_loss", pa.float64()),
] + [(name, pa.map_(pa.string(), pa.float64())) for name in FAIRNESS_COLUMNS] + [
    (name, pa.float64()) for name in ESTIMATE_COLUMNS]
_REGRESSION = [
    ("labeled_count", pa.int64()), ("mean_squared_error", pa.float64()), ("root_mean_squared_error", pa.float64()),
    ("mean_absolute_error", pa.float64()), ("mean_absolute_percentage_error", pa.float64()),
    ("r2_score", pa.float64()),
]
_DRIFT_HEAD = [("window", WINDOW), ("granularity", pa.string()), ("monitor_version", pa.int64())]
_DRIFT_BODY = [
    ("slice_key", pa.string()), ("slice_value", pa.string()), ("column_name", pa.string()),
    ("data_type", pa.string()), ("window_cmp", WINDOW), ("drift_type", pa.string()),
    ("count", pa.int64()), ("count_cmp", pa.int64()),
    ("count_delta", pa.float64()), ("avg_delta", pa.float64()), ("percent_null_delta", pa.float64()),
    ("percent_zeros_delta", pa.float64()), ("percent_distinct_delta", pa.float64()),
    ("non_null_columns_delta", pa.struct([("added", pa.int32()), ("missing", pa.int32())])),
    ("js_distance", pa.float64()), ("ks_test", STAT_TEST), ("wasserstein_distance", pa.float64()),
    ("population_stability_index", pa.float64()), ("chi_squared_test", STAT_TEST),
    ("tv_distance", pa.float64()), ("l_infinity_distance", pa.float64()),
    ("feature_importance", pa.float64()), ("importance_weighted_drift", pa.float64()),
]
MAP_COLUMNS = ("precision", "recall", "f1_score", *FAIRNESS_COLUMNS)
"""Columns whose values are maps (or hold one): rows give them as dicts."""


def _model(model_id_col: str | None) -> list[tuple[str, pa.DataType]]:
    return [(model_id_col, pa.string())] if model_id_col else []


def profile_schema(model_id_col: str | None = None, problem_type: ProblemType | None = None,
                   custom_metrics: Sequence[str] = ()) -> pa.Schema:
    """Columns of ``<table>_profile_metrics``.

    Args:
        model_id_col: the model id column (InferenceLog ``model_id_col``), or None.
        problem_type: the InferenceLog problem type (adds the model quality columns), or None.
        custom_metrics: names of the aggregate and derived custom metrics (one double each).
    """
    quality = {"classification": _CLASSIFICATION, "regression": _REGRESSION, None: []}[problem_type]
    return pa.schema(_PROFILE_HEAD + _model(model_id_col) + _PROFILE_BODY + quality
                     + [(name, pa.float64()) for name in custom_metrics])


def drift_schema(model_id_col: str | None = None, custom_metrics: Sequence[str] = ()) -> pa.Schema:
    """Columns of ``<table>_drift_metrics``; ``custom_metrics`` are the drift custom metrics."""
    return pa.schema(_DRIFT_HEAD + _model(model_id_col) + _DRIFT_BODY
                     + [(name, pa.float64()) for name in custom_metrics])


def column_kind(typ: pa.DataType) -> str | tuple[str, ...]:
    """How a rule reads a column: ``number``, ``string``, ``map`` (by key), ``list``, ``timestamp``,
    or a struct's numeric (or timestamp) field names (read as ``column.field``)."""
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        return "number"
    if pa.types.is_string(typ):
        return "string"
    if pa.types.is_map(typ):
        return "map"
    if pa.types.is_list(typ):
        return "list"
    if pa.types.is_timestamp(typ):
        return "timestamp"
    if pa.types.is_struct(typ):
        return tuple(f.name for f in typ if column_kind(f.type) in ("number", "timestamp"))
    raise ValueError(f"no column kind for {typ}")


def metric_columns(table: TableKind) -> dict[str, str | tuple[str, ...]]:
    """Every documented column of the ``profile`` or ``drift`` table (classification and
    regression quality both, no model id or custom metric columns) → :func:`column_kind`."""
    if table == "profile":
        fields = list(profile_schema(problem_type="classification")) + list(
            profile_schema(problem_type="regression"))
    else:
        fields = list(drift_schema())
    return {f.name: column_kind(f.type) for f in fields}
