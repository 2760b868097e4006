"""Named crash points for fault-injection tests: ``fault_point("promote.alias.champion")``.

Production code calls :func:`fault_point` at the boundaries between its durable steps (an
alias moved, a table written). Unless the environment variable :data:`ENV` names that point,
the call does nothing but read a cached environment value. When it does, the process kills
itself with SIGKILL on the spot: no ``finally`` block, ``atexit`` hook or buffered write runs,
exactly as if the machine had lost power or the job's container had been evicted.

``DRIFTGATE_FAULT`` holds one point or several separated by commas; ``name#n`` kills on the
n-th time the point is reached in this process (``promote.tag#3``: after the third tag).
Tests run the code under test in a subprocess with the variable set, then check what a
fresh process makes of the state left behind (``tests/test_faults.py``). With
``DRIFTGATE_FAULT_TRACE=<file>`` every point passed is appended to that file as ``name#n``
instead, so a test can check that it enumerates every point an uninterrupted run passes.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["ENV", "TRACE_ENV", "fault_point", "armed"]

ENV = "DRIFTGATE_FAULT"
TRACE_ENV = "DRIFTGATE_FAULT_TRACE"

_hits: Counter[str] = Counter()


def armed() -> frozenset[str]:
    """The points named in :data:`ENV` (empty in production)."""
    raw = os.environ.get(ENV, "")
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if :data:`ENV` names ``name`` (or ``name#n`` on its n-th pass)."""
    points = armed()
    trace = os.environ.get(TRACE_ENV)
    if not points and not trace:
        return
    _hits[name] += 1
    if trace:
        with open(trace, "a") as fh:
            fh.write(f"{name}#{_hits[name]}\n")
    if name in points or f"{name}#{_hits[name]}" in points:
        os.kill(os.getpid(), signal.SIGKILL)
