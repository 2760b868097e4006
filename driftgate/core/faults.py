"""Fault injection for crash tests: ``fault_point(name)`` kills the process where it stands.

A test sets ``DRIFTGATE_FAULT=<name>`` in a child process's environment; when that process
reaches ``fault_point(<name>)`` it sends itself SIGKILL, exactly as an out-of-memory kill or a
pulled plug would stop it: no ``finally`` blocks, no atexit handlers, no flushed buffers.
Unset (always, outside tests), a fault point costs one environment lookup.
"""
from __future__ import annotations

import os
import signal

__all__ = ["fault_point", "ENV_VAR"]

ENV_VAR = "DRIFTGATE_FAULT"


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$DRIFTGATE_FAULT`` names ``name``."""
    if os.environ.get(ENV_VAR) == name:
        os.kill(os.getpid(), signal.SIGKILL)
