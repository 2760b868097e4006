"""Command-line entry points of the whole loop: ``demo`` and ``run``."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def demo(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Build the demo world and run the whole loop once on embedded defaults."""
    not_built("demo")


def run(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Run the retraining job once: evaluate → condition → train → shadow → promote."""
    not_built("run")
