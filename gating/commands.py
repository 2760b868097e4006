"""Command-line entry points of the gating package (registered in driftgate/cli.py)."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def gate(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Evaluate the drift gate and print the decision with its reasons."""
    not_built("gate")
