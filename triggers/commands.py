"""Command-line entry points of the triggers package (registered in driftgate/cli.py)."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def watch(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Watch Delta tables and run the retraining job on updates (table_update trigger)."""
    not_built("watch")
