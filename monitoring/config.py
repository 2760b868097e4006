"""A monitor definition mirroring Lakehouse Monitoring (Data Profiling) fields.

Field names follow the legacy API / bundle resource (``inference_log.timestamp_col``,
``slicing_exprs``, ``custom_metrics`` ...), so a ``quality_monitors`` bundle block and
this section read alike. ``problem_type`` accepts both the short form and the API enum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from driftgate.core.types import SchemaName, StrictModel, TableName

__all__ = [
    "Granularity", "InferenceColumns", "InferenceLogConfig", "TimeSeriesConfig", "SnapshotConfig", "CustomMetric", "MonitorConfig",
]

Granularity = Literal[
    "5 minutes", "30 minutes", "1 hour", "1 day", "1 week", "2 weeks", "3 weeks", "4 weeks", "1 month", "1 year"
]


def _without_enum_prefix(value, *prefixes: str):
    """``PROBLEM_TYPE_CLASSIFICATION`` → ``classification``: the Databricks SDK's enum spellings
    are accepted wherever conf takes the short lower-case name."""
    if isinstance(value, str):
        for prefix in prefixes:
            if value.upper().startswith(prefix):
                return value[len(prefix):].lower()
    return value


class InferenceLogConfig(StrictModel):
    """``inference_log`` analysis: a model's requests, predictions and (late) labels."""

    timestamp_col: str = "timestamp"
    """Timestamp column (timestamp type) that assigns rows to windows."""
    granularities: list[Granularity] = Field(default_factory=lambda: ["1 day"], min_length=1)
    """Window lengths; each gets its own rows (``granularity`` column)."""
    model_id_col: str = "model_id"
    """Column naming the model version that served the row; output rows per value plus ``'*'``."""
    prediction_col: str = "prediction"
    """Predicted class (classification) or value (regression)."""
    label_col: str | None = "label"
    """Ground truth; may be NULL until labels arrive. Quality metrics need it."""
    prediction_proba_col: str | None = "probability"
    """P(class 1) for binary classification; enables roc_auc_score and log_loss."""
    problem_type: Literal["classification", "regression"] = "classification"
    """``classification`` or ``regression`` (``PROBLEM_TYPE_*`` enum spellings are accepted)."""
    request_id_col: str | None = "request_id"
    """driftgate's addition: the id of each served request; late labels merge on it, the shadow
    table replaces rows by it, and it is never profiled. None when the table has no such column."""

    @field_validator("problem_type", mode="before")
    @classmethod
    def _enum_spelling(cls, value):
        return _without_enum_prefix(value, "PROBLEM_TYPE_", "INFERENCE_PROBLEM_TYPE_")


class TimeSeriesConfig(StrictModel):
    """``time_series`` analysis: any table with a timestamp column."""

    timestamp_col: str
    """Timestamp column (timestamp type) that assigns rows to windows."""
    granularities: list[Granularity] = Field(min_length=1)
    """Window lengths; each gets its own rows."""


class SnapshotConfig(StrictModel):
    """``snapshot`` analysis: the whole table, one window ending at the refresh time."""


class CustomMetric(StrictModel):
    """A custom metric, as ``catalog.MonitorMetric``; becomes a column named ``name``.

    ``aggregate``: a SQL aggregate expression over the rows of a window
    (``{{input_column}}`` is replaced by each input column). ``derived``: an expression
    over aggregate metrics of the same row (by name). ``drift``: an expression over
    ``{{current_df}}.<metric>`` and ``{{base_df}}.<metric>``, written to the drift table.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Output column name."""
    definition: str
    """SQL expression (subset of Spark SQL, see monitoring/expressions.py)."""
    input_columns: list[str] = Field(default_factory=lambda: [":table"], min_length=1)
    """Columns to compute it for; ``:table`` means one value per window (the ``:table`` row)."""
    type: Literal["aggregate", "derived", "drift"] = "aggregate"
    """``aggregate``, ``derived`` or ``drift`` (``CUSTOM_METRIC_TYPE_*`` spellings are accepted)."""
    output_data_type: Literal["double"] = "double"
    """Type of the output column (only double is supported)."""

    @field_validator("type", mode="before")
    @classmethod
    def _enum_spelling(cls, value):
        return _without_enum_prefix(value, "CUSTOM_METRIC_TYPE_", "DATA_PROFILING_CUSTOM_METRIC_TYPE_")


class MonitorConfig(StrictModel):
    """One monitor on one table; output tables are ``<output_schema_name>.<table>_{profile,drift}_metrics``."""

    table_name: TableName = "main.default.inference_log"
    """The monitored table."""
    output_schema_name: SchemaName = "main.default"
    """Schema (``catalog.schema``) that receives the two metric tables."""
    inference_log: InferenceLogConfig | None = InferenceLogConfig()
    """Inference-log analysis (set exactly one of inference_log / time_series / snapshot)."""
    time_series: TimeSeriesConfig | None = None
    """Time-series analysis."""
    snapshot: SnapshotConfig | None = None
    """Snapshot analysis."""
    baseline_table_name: TableName | None = "main.default.inference_baseline"
    """Table with the same schema whose distribution BASELINE drift compares against."""
    baseline_policy: Literal["fixed", "champion"] = "champion"
    """What the baseline is after a promotion. ``champion``: the new champion's scored shadow rows
    (served rows it was not trained on, labelled), recorded with its version, so BASELINE drift
    and ``relative_to: baseline`` rules compare against the model that now serves: one drift
    episode stops firing once a retrained model is promoted, but slow drift across several
    promotions is never seen against the original data. ``fixed``: the baseline written by
    ``driftgate init`` stays until you rewrite it: drift is always measured from the same
    reference, and the gate keeps firing after a promotion while the data stays moved."""
    importance_weighting: bool = True
    """When a baseline is written (``driftgate init``, a promotion), compute the model version's
    permutation importance on it (binary classification with labels and probabilities) and store it
    in ``<audit_schema>.driftgate_feature_importance``; drift comparisons then get an
    ``:importance_weighted`` row. False: skip it (a model that is slow to score)."""
    slicing_exprs: list[str] = Field(default_factory=list)
    """Column names (one slice per value, top 100) or boolean SQL expressions (true / false slices)."""
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    """Extra metrics, written as extra columns."""
    exclude_columns: list[str] = Field(default_factory=list)
    """Columns not profiled (ids such as a customer key); the timestamp, model-id and request-id
    columns of the inference-log contract are never profiled."""
    engine: Literal["embedded", "spark"] = "embedded"
    """``embedded`` (NumPy / Arrow, no JVM) or ``spark`` (pyspark; same rows)."""
    psi_bins: int = Field(10, ge=2, le=1000)
    """Quantile bins of the comparison distribution used for population_stability_index."""
    max_slice_values: int = Field(100, ge=1)
    """A slicing column gets slices for at most this many most frequent values."""

    @model_validator(mode="before")
    @classmethod
    def _one_analysis_given(cls, data):
        # Choosing time_series or snapshot in a conf layer must switch off the default inference_log.
        if isinstance(data, dict) and (data.get("time_series") is not None or data.get("snapshot") is not None) \
                and "inference_log" not in data:
            data = {**data, "inference_log": None}
        return data

    @model_validator(mode="after")
    def _one_analysis(self) -> "MonitorConfig":
        chosen = [n for n in ("inference_log", "time_series", "snapshot") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"exactly one of inference_log, time_series, snapshot must be set, got {chosen or 'none'}"
            )
        names = [m.name for m in self.custom_metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"custom_metrics names must be unique, got {names}")
        return self

    @property
    def table(self) -> str:
        return self.table_name.split(".")[-1]

    @property
    def profile_metrics_table(self) -> str:
        return f"{self.output_schema_name}.{self.table}_profile_metrics"

    @property
    def drift_metrics_table(self) -> str:
        return f"{self.output_schema_name}.{self.table}_drift_metrics"

    @property
    def timestamp_col(self) -> str | None:
        analysis = self.inference_log or self.time_series
        return analysis.timestamp_col if analysis else None

    @property
    def granularities(self) -> list[str]:
        analysis = self.inference_log or self.time_series
        return list(analysis.granularities) if analysis else []

    @property
    def model_id_col(self) -> str | None:
        return self.inference_log.model_id_col if self.inference_log else None

    @property
    def skipped_columns(self) -> set[str]:
        """Columns never profiled: the timestamp, the model id, the request id and ``exclude_columns``."""
        log = self.inference_log
        return {c for c in (self.timestamp_col, self.model_id_col, log.request_id_col if log else None,
                            *self.exclude_columns) if c}

    @property
    def columns(self) -> "InferenceColumns":
        """The inference-log contract: which column plays which role (every stage reads these)."""
        log = self.inference_log
        if log is None:
            raise ValueError("monitor: the inference-log contract needs monitor.inference_log (this monitor is "
                             "a time_series / snapshot monitor)")
        return InferenceColumns(timestamp=log.timestamp_col, prediction=log.prediction_col,
                                model_id=log.model_id_col, label=log.label_col,
                                probability=log.prediction_proba_col, request_id=log.request_id_col)


@dataclass(frozen=True)
class InferenceColumns:
    """The inference table's contract, from ``monitor.inference_log``: one definition for the monitor,
    the baseline, shadow replay, fairness, promotion, traffic logging and the demo.

    ``label``, ``probability`` and ``request_id`` are optional (None: the table has no such column).
    """

    timestamp: str
    prediction: str
    model_id: str
    label: str | None = None
    probability: str | None = None
    request_id: str | None = None

    def roles(self) -> dict[str, str]:
        """``{conf key: column}`` for every configured role (the optional ones only when set)."""
        pairs = {"timestamp_col": self.timestamp, "prediction_col": self.prediction,
                 "model_id_col": self.model_id, "label_col": self.label,
                 "prediction_proba_col": self.probability, "request_id_col": self.request_id}
        return {k: v for k, v in pairs.items() if v}

    @property
    def outputs(self) -> list[str]:
        """Columns that are not model inputs (the contract's roles)."""
        return list(self.roles().values())
