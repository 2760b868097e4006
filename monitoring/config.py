"""A monitor definition mirroring Lakehouse Monitoring (Data Profiling) fields."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from driftgate.types import SchemaName, StrictModel, TableName

Granularity = Literal[
    "5 minutes", "30 minutes", "1 hour", "1 day", "1 week", "2 weeks", "3 weeks", "4 weeks", "1 month", "1 year"
]


class InferenceLogConfig(StrictModel):
    """``inference_log`` analysis: a model's requests, predictions and (late) labels."""

    timestamp_col: str = "timestamp"
    """Timestamp (or date) column that places each request in its windows."""
    granularities: list[Granularity] = Field(default_factory=lambda: ["1 day"], min_length=1)
    """Window sizes; each gets its own rows (``granularity`` column)."""
    model_id_col: str = "model_id"
    """Column naming the model version that served; ``*`` rows aggregate all of them."""
    prediction_col: str = "prediction"
    """Predicted class (categorical for classification)."""
    label_col: str | None = "label"
    """Ground truth, NULL until it arrives; None disables model-quality metrics."""
    prediction_proba_col: str | None = "probability"
    """P(class 1/true), for ROC AUC and log loss; None if the model has no probabilities."""
    problem_type: Literal["classification", "regression"] = "classification"
    """Classification gets accuracy/precision/recall/F1/AUC/log loss and fairness maps."""


class TimeSeriesConfig(StrictModel):
    """``time_series`` analysis: windows over a timestamp, no model columns."""

    timestamp_col: str
    """Timestamp (or date) column that places each row in its windows."""
    granularities: list[Granularity] = Field(min_length=1)
    """Window sizes; each gets its own rows."""


class SnapshotConfig(StrictModel):
    """``snapshot`` analysis: the whole table is one window, recomputed on every refresh."""


class CustomMetric(StrictModel):
    """A custom metric, as ``catalog.MonitorMetric``: ``definition`` is a SQL expression."""

    name: str
    """Column name of the metric in the output table."""
    definition: str
    """SQL expression; ``{{input_column}}`` stands for each input column."""
    input_columns: list[str] = Field(default_factory=lambda: [":table"])
    """Columns it is computed for; ``:table`` = once per group, on the ``:table`` row."""
    type: Literal["aggregate", "derived", "drift"] = "aggregate"
    """Only ``aggregate`` is computed so far."""
    output_data_type: Literal["double", "bigint", "string", "boolean"] = "double"
    """Type of the output column."""


class MonitorConfig(StrictModel):
    """One monitor on one table; output tables are ``<output_schema_name>.<table>_{profile,drift}_metrics``."""

    table_name: TableName = "main.driftgate_demo.inference_log"
    """The monitored Delta table."""
    output_schema_name: SchemaName = "main.driftgate_demo"
    """``catalog.schema`` of the two metric tables."""
    inference_log: InferenceLogConfig | None = InferenceLogConfig()
    """Inference-log analysis (set exactly one of inference_log, time_series, snapshot)."""
    time_series: TimeSeriesConfig | None = None
    """Time-series analysis."""
    snapshot: SnapshotConfig | None = None
    """Snapshot analysis."""
    baseline_table_name: TableName | None = "main.driftgate_demo.inference_baseline"
    """Same-schema table the BASELINE drift compares with; None = CONSECUTIVE drift only."""
    slicing_exprs: list[str] = Field(default_factory=list)
    """Column names (a slice per value) or boolean SQL expressions such as ``age < 25``."""
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    """Extra metrics given as SQL expressions."""
    exclude_columns: list[str] = Field(default_factory=lambda: ["customer_id", "request_id"])
    """Columns not profiled (ids); the timestamp column is never profiled."""
    engine: Literal["embedded", "spark"] = "embedded"
    """``embedded`` (NumPy/SciPy over Arrow, no JVM) or ``spark``."""

    @model_validator(mode="after")
    def _one_analysis(self) -> "MonitorConfig":
        chosen = [n for n in ("inference_log", "time_series", "snapshot") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"exactly one of inference_log, time_series, snapshot must be set, got {chosen or 'none'}"
            )
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
