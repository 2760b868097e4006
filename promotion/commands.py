"""Command-line entry points of the promotion package (registered in driftgate/cli.py)."""
from __future__ import annotations

from driftgate.runtime import ConfOpt, EnvOpt, SetOpt, not_built


def shadow(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Shadow-evaluate the challenger against the champion on recent traffic."""
    not_built("shadow")


def promote(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Move the champion alias to the challenger, only if its shadow evaluation passed."""
    not_built("promote")


def rollback(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Restore the previous champion, with a recorded reason."""
    not_built("rollback")


def status(conf: ConfOpt = None, env: EnvOpt = None, set_: SetOpt = None) -> None:
    """Show champion, challenger, previous champion, recent decisions and runs."""
    not_built("status")
