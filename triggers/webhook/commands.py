"""Command-line entry point of the alert webhook receiver."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def serve(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Serve the SQL-alert webhook receiver (FastAPI under uvicorn)."""
    not_built("serve")
