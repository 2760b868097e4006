"""The monitor: Lakehouse-Monitoring-compatible profile and drift metric tables.

``refresh(ws, monitor)`` is the stage function; the tables' columns are documented in
``docs/tables.md``.
"""
from monitoring.config import CustomMetric, InferenceLogConfig, MonitorConfig, SnapshotConfig, TimeSeriesConfig
from monitoring.refresh import RefreshResult, refresh

__all__ = [
    "refresh", "RefreshResult", "MonitorConfig", "InferenceLogConfig", "TimeSeriesConfig", "SnapshotConfig",
    "CustomMetric",
]
