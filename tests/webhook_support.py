"""Helpers shared by the webhook tests: settings, signed requests, a controllable clock and gate."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from driftgate.core.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD, TOKEN, HMAC_SECRET = "databricks", "s3cret-pass", "tok-123", "hmac-key"
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
