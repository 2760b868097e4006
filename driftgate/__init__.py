"""driftgate: drift- and quality-gated retraining for MLflow models.

The public surface is listed in ``__all__``; everything else is internal. Stage
functions live in their packages (``monitoring.refresh``, ``gating.evaluate``,
``training.train``, ``promotion.shadow`` / ``promote``) and the task graph that
chains them is :func:`run_retraining_job`.
"""
from driftgate.audit import read_events, record_event
from driftgate.config import Settings, load_settings, secret
from driftgate.errors import (
    ConfigError,
    DriftgateError,
    GateError,
    LaunchError,
    MonitorError,
    PromotionRefused,
    RegistryError,
    TableError,
    TrainingError,
    TriggerError,
    WebhookError,
)
from driftgate.pipeline import JobRunResult, run_retraining_job
from workspace import Workspace, open_workspace

__version__ = "0.1.0"

__all__ = [
    "Settings", "load_settings", "secret",
    "Workspace", "open_workspace",
    "JobRunResult", "run_retraining_job",
    "record_event", "read_events",
    "DriftgateError", "ConfigError", "TableError", "MonitorError", "GateError", "TrainingError",
    "RegistryError", "PromotionRefused", "TriggerError", "LaunchError", "WebhookError",
]
