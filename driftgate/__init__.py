"""driftgate: drift- and quality-gated retraining for MLflow models.

The public surface is listed in ``__all__``; everything else is internal. Stage
functions live in their packages (``monitoring.refresh``, ``gating.evaluate``,
``training.train``, ``promotion.shadow`` / ``promote``) and the task graph that
chains them is :func:`run_retraining_job`.

Names resolve lazily: the section config models of every package import
``driftgate.types``, so importing the whole surface eagerly here would be circular
(and would slow every CLI start).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from driftgate.types import lazy_surface

__version__ = "0.1.0"

_SURFACE = {
    "Settings": "driftgate.config", "load_settings": "driftgate.config", "secret": "driftgate.config",
    "Workspace": "workspace", "open_workspace": "workspace",
    "JobRunResult": "driftgate.pipeline", "run_retraining_job": "driftgate.pipeline",
    "record_event": "driftgate.audit", "read_events": "driftgate.audit",
    **{name: "driftgate.errors" for name in (
        "DriftgateError", "ConfigError", "TableError", "MonitorError", "GateError", "TrainingError",
        "RegistryError", "PromotionRefused", "TriggerError", "LaunchError", "WebhookError")},
}

__all__ = list(_SURFACE)


__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from driftgate.audit import read_events, record_event
    from driftgate.config import Settings, load_settings, secret
    from driftgate.errors import (ConfigError, DriftgateError, GateError, LaunchError, MonitorError,
                                  PromotionRefused, RegistryError, TableError, TrainingError, TriggerError,
                                  WebhookError)
    from driftgate.pipeline import JobRunResult, run_retraining_job
    from workspace import Workspace, open_workspace
