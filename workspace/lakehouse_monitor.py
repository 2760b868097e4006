"""Refresh a native Lakehouse Monitoring (data profiling) monitor and wait for it.

The bundle's monitor job is the one schedule of the drift table, whichever engine writes it:
with ``monitor_engine: lakehouse`` its task queues a refresh of the ``quality_monitors``
resource (``POST /api/2.1/unity-catalog/tables/{table}/monitor/refreshes``) and polls it
(``GET .../refreshes/{refresh_id}``) until it ends; the drift table it writes starts the
retraining job (table-update trigger).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from driftgate.core.errors import MonitorError

__all__ = ["refresh_native_monitor", "TERMINAL_STATES"]

log = logging.getLogger("driftgate.workspace.lakehouse_monitor")

TERMINAL_STATES = ("SUCCESS", "FAILED", "CANCELED")


def _state(info) -> str:
    return str(getattr(info.state, "value", info.state))


def refresh_native_monitor(table_name: str, client=None, *, poll_seconds: float = 30.0, timeout_seconds: float = 3600.0,
                           sleep: Callable[[float], None] = time.sleep) -> int:
    """Queue a refresh of ``table_name``'s monitor and wait until it ends. Returns the refresh id.

    Raises:
        MonitorError: the refresh failed, was cancelled, or did not end within ``timeout_seconds``.
    """
    if client is None:
        from databricks.sdk import WorkspaceClient

        client = WorkspaceClient()
    info = client.quality_monitors.run_refresh(table_name=table_name)
    refresh_id = int(info.refresh_id)
    waited = 0.0
    while _state(info) not in TERMINAL_STATES:
        if waited >= timeout_seconds:
            raise MonitorError(f"{table_name}: monitor refresh {refresh_id} still {_state(info)} after {waited:.0f} s")
        sleep(poll_seconds)
        waited += poll_seconds
        info = client.quality_monitors.get_refresh(table_name=table_name, refresh_id=refresh_id)
        log.info("%s: monitor refresh %s is %s", table_name, refresh_id, _state(info))
    if _state(info) != "SUCCESS":
        raise MonitorError(f"{table_name}: monitor refresh {refresh_id} ended {_state(info)}: {info.message or ''}".strip())
    return refresh_id
