"""Monitoring: Lakehouse-Monitoring-compatible profile and drift metric tables."""
from monitoring.config import CustomMetric, InferenceLogConfig, MonitorConfig, SnapshotConfig, TimeSeriesConfig
from monitoring.refresh import RefreshResult, drift_schema, profile_schema, refresh

__all__ = ["refresh", "RefreshResult", "MonitorConfig", "InferenceLogConfig", "TimeSeriesConfig", "SnapshotConfig",
           "CustomMetric", "profile_schema", "drift_schema"]
