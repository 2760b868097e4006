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
    granularities: list[Granularity] = Field(default_factory=lambda: ["1 day"], min_length=1)
    model_id_col: str = "model_id"
    prediction_col: str = "prediction"
    label_col: str | None = "label"
    prediction_proba_col: str | None = "probability"
    problem_type: Literal["classification", "regression"] = "classification"


class TimeSeriesConfig(StrictModel):
    timestamp_col: str
    granularities: list[Granularity] = Field(min_length=1)


class SnapshotConfig(StrictModel):
    pass


class CustomMetric(StrictModel):
    """A custom metric, as ``catalog.MonitorMetric``: ``definition`` is a SQL expression."""

    name: str
    definition: str
    input_columns: list[str] = Field(default_factory=lambda: [":table"])
    type: Literal["aggregate", "derived", "drift"] = "aggregate"
    output_data_type: Literal["double", "bigint", "string", "boolean"] = "double"


class MonitorConfig(StrictModel):
    """One monitor on one table; output tables are ``<output_schema_name>.<table>_{profile,drift}_metrics``."""

    table_name: TableName = "main.driftgate_demo.inference_log"
    output_schema_name: SchemaName = "main.driftgate_demo"
    inference_log: InferenceLogConfig | None = InferenceLogConfig()
    time_series: TimeSeriesConfig | None = None
    snapshot: SnapshotConfig | None = None
    baseline_table_name: TableName | None = "main.driftgate_demo.inference_baseline"
    slicing_exprs: list[str] = Field(default_factory=list)
    custom_metrics: list[CustomMetric] = Field(default_factory=list)
    exclude_columns: list[str] = Field(default_factory=lambda: ["customer_id", "request_id"])
    """Columns not profiled (ids); the timestamp column is never profiled."""
    engine: Literal["embedded", "spark"] = "embedded"

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
