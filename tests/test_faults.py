"""Fault injection: SIGKILL at every named step boundary, then a fresh process recovers.

Each case runs the code under test in a real subprocess with ``DRIFTGATE_FAULT=<point>``
(:mod:`driftgate.core.faults`), which kills itself with SIGKILL at that point, and checks
what is left behind after recovery.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from driftgate.core.faults import ENV


def _run_point(env_value: str, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV: env_value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_fault_point_kills_only_when_named_and_on_the_named_pass():
    code = ("from driftgate.core.faults import fault_point\n"
            "for i in range(3):\n    print(i, flush=True)\n    fault_point('demo.step')\n"
            "fault_point('demo.other')\nprint('end', flush=True)")
    assert _run_point("", code).stdout.split() == ["0", "1", "2", "end"]
    killed = _run_point("demo.step", code)
    assert killed.returncode == -signal.SIGKILL and killed.stdout.split() == ["0"]
    second = _run_point("x, demo.step#2", code)
    assert second.returncode == -signal.SIGKILL and second.stdout.split() == ["0", "1"]
    other = _run_point("demo.other", code)
    assert other.returncode == -signal.SIGKILL and other.stdout.split() == ["0", "1", "2"]
