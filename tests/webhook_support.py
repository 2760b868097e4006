"""Helpers shared by the webhook tests: settings, signed requests, a controllable clock and gate."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from driftgate.core.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD, TOKEN, HMAC_SECRET = "databricks", "s3cret-pass-0123456", "tok-0123456789abcdef", "hmac-key-0123456789"
EVALUATED = "2026-08-01T09:00:00Z"


def webhook_settings(tmp_path, *sets: str):
    return load_settings(REPO / "conf", "demo", (f"workspace.root={tmp_path / '.driftgate'}", *sets))


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def template_body(state: str = "TRIGGERED", alert_id: str = "7d3b9c1e-aaaa-bbbb-cccc-0123456789ab",
                  evaluated_at: str | None = EVALUATED, **extra) -> bytes:
    data = {"driftgate": 1, "alert_id": alert_id, "alert_name": "predictions drift", "state": state,
            "value": "0.31", "threshold": "0.2", "column": "max_js", **extra}
    if evaluated_at is not None:
        data["evaluated_at"] = evaluated_at
    return json.dumps(data).encode()


def redash_body(state: str = "triggered", alert_id=42) -> bytes:
    return json.dumps({
        "event": "alert_state_change",
        "alert": {"id": alert_id, "name": "predictions drift", "state": state, "query_id": 2, "user_id": 3,
                  "options": {"column": "max_js", "op": ">", "value": 0.2}, "rearm": None,
                  "last_triggered_at": "2026-08-01T09:00:03.120Z", "created_at": "2026-07-01T00:00:00Z",
                  "updated_at": "2026-08-01T09:00:03Z", "title": "drift", "description": "x"},
        "url_base": "https://adb-1.azuredatabricks.net", "metadata": {},
    }).encode()


class Clock:
    """Unix-seconds clock that moves only when told."""

    def __init__(self, start: float = 1_785_574_800.0):  # 2026-08-01T09:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeDecision:
    status: str
    reasons: list[str] = field(default_factory=lambda: ["feature_psi: population_stability_index 0.31 > 0.2"])
    decision_id: str = "dec-1"


class FakeGate:
    """Returns the given statuses in turn (the last one repeats) and counts calls."""

    def __init__(self, *statuses: str):
        self.statuses = list(statuses) or ["EXCEEDED"]
        self.calls = 0
        self.run_keys: list[str | None] = []

    def __call__(self, *, run_key: str | None = None) -> FakeDecision:
        self.run_keys.append(run_key)
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        return FakeDecision(status)


class AuditLog(list):
    def __call__(self, kind, **kwargs):
        self.append({"kind": kind, **kwargs})

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self]


FIXTURES = REPO / "tests" / "fixtures" / "webhook"


def fixture_body(name: str, **changes) -> bytes:
    """A documented Databricks payload (``databricks_alert_current`` / ``databricks_alert_legacy``)."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    for path, value in changes.items():  # "alert.alert.custom_description" -> value
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return json.dumps(data).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(root, *args: str, env_extra: dict[str, str] | None = None, wait: bool = True,
                max_files: int | None = None):
    """``driftgate serve --insecure`` on loopback as a real child process; returns ``(proc, base_url)``
    once ``/healthz`` answers (or at once with ``wait=False``). ``max_files`` sets its descriptor limit."""
    import os
    import subprocess
    import sys

    from driftgate.triggers.webhook.service import wait_until_healthy

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTGATE_WEBHOOK_", "DRIFTGATE_FAULT"))}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "OMP_NUM_THREADS": "1", **(env_extra or {})})
    cmd = [sys.executable, "-m", "driftgate.cli", "serve", "--env", "demo", "--set", f"workspace.root={root}", "--insecure",
           "--port", str(port), "--no-access-log", *args]
    def limit():
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, max_files))

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
                            preexec_fn=limit if max_files else None)
    base = f"http://127.0.0.1:{port}"
    if wait:
        try:
            wait_until_healthy(base, proc, timeout=120)
        except RuntimeError as exc:
            proc.kill()
            raise RuntimeError(f"{exc}: {proc.stderr.read().decode()[-3000:]}") from None
    return proc, base


def stop_serve(proc) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except Exception:  # noqa: BLE001 - a test cleanup
            proc.kill()
            proc.wait(5)
