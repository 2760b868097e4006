"""Command-line entry points of the monitoring package (registered in driftgate/cli.py)."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def monitor(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Refresh the profile and drift metric tables (incremental)."""
    not_built("monitor")
