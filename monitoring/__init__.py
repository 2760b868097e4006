"""The monitor: Lakehouse-Monitoring-compatible profile and drift metric tables.

``refresh(ws, monitor)`` is the stage function; the tables' columns are documented in
``docs/tables.md``.
"""
if __name__ != "driftgate.monitoring":  # the monitoring/ folder installs as driftgate.monitoring only (setup.py)
    raise ImportError(f"import driftgate.monitoring, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.monitoring.config import CustomMetric, InferenceLogConfig, MonitorConfig, SnapshotConfig, TimeSeriesConfig
from driftgate.monitoring.refresh import RefreshResult, refresh

__all__ = [
    "refresh", "RefreshResult", "MonitorConfig", "InferenceLogConfig", "TimeSeriesConfig", "SnapshotConfig",
    "CustomMetric",
]
