"""Settings of the alert webhook receiver and of the launcher its worker uses.

Credentials are never settings: the receiver reads ``DRIFTGATE_WEBHOOK_USER`` /
``DRIFTGATE_WEBHOOK_PASSWORD``, ``DRIFTGATE_WEBHOOK_TOKEN`` and
``DRIFTGATE_WEBHOOK_HMAC_SECRET`` from the environment, and the Databricks SDK
reads its own (``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN`` or a profile).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from driftgate.core.types import StrictModel

__all__ = ["WebhookConfig", "LaunchConfig"]


class LaunchConfig(StrictModel):
    """How the worker launches the retraining job once the gate says EXCEEDED."""

    mode: Literal["auto", "local", "run_now", "submit"] = "auto"
    """``local`` runs the task graph in-process; ``run_now`` / ``submit`` call the Jobs API;
    ``auto`` picks ``local`` for the local backend and ``run_now`` for Databricks."""
    job_id: int | None = Field(None, ge=1)
    """The retraining job's id, required by ``run_now``."""
    job_parameters: dict[str, str] = Field(default_factory=dict)
    """Extra job parameters (each must be defined on the job); the worker adds ``trigger: webhook``."""
    queue: bool = True
    """Send ``queue: {enabled: true}`` so a busy job queues the run instead of skipping it."""
    submit_run: dict[str, Any] | None = None
    """For ``submit``: the ``runs/submit`` body (``run_name``, ``tasks``, ``environments``, ``git_source``, ``run_as``,
    ...); every field is passed on, an unknown one is refused; ``idempotency_token`` is always the run key."""
    retry_timeout_seconds: int = Field(60, ge=1)
    """How long one launch attempt keeps retrying 429/5xx answers in-process (SDK retry machinery): the attempt,
    the SDK's own retries and ``Retry-After`` waits included, ends within it."""
    max_attempts: int = Field(8, ge=1)
    """Queue-level attempts before a launch is given up with a recorded reason."""
    backoff_seconds: float = Field(30.0, ge=0)
    """First queue-level backoff after a failed attempt; doubles each time."""
    max_backoff_seconds: float = Field(900.0, ge=0)
    """Cap on the queue-level backoff."""

    @model_validator(mode="after")
    def _needs_job(self) -> "LaunchConfig":
        if self.mode == "submit" and not self.submit_run:
            raise ValueError("webhook.launch.submit_run must hold the runs/submit body when mode is submit, got None")
        return self


class WebhookConfig(StrictModel):
    """The SQL-alert webhook receiver (``driftgate serve`` and the serverless handlers)."""

    max_body_bytes: int = Field(65536, ge=1024)
    """Larger bodies are refused with 413 before they are parsed."""
    min_time_between_triggers_seconds: int = Field(3600, ge=0)
    """Cooldown between launches, as the table trigger's: later alerts wait in the queue until it ends."""
    window_seconds: int = Field(86400, ge=60)
    """The gate's metric window (the drift rules' granularity); a body without an evaluation time gets the
    run key of the window it arrived in, so its retries collapse."""
    hmac_replay_window_seconds: int = Field(300, ge=1)
    """Signed requests whose timestamp is further than this from now are refused (replay protection)."""
    gate: Literal["worker", "job"] = "worker"
    """``worker`` runs the shared gate before launching; ``job`` leaves it to the job's own
    ``evaluate_drift`` + condition tasks (serverless handlers cannot read the metric tables)."""
    fsync_acks: bool = False
    """Sync each queued alert to disk before acknowledging it (SQLite ``synchronous=FULL``). Off, an
    acknowledged alert survives a crash of the service but not of the machine; on, every answer waits
    for the disk (p99 over 300 ms on a busy shared disk)."""
    poll_seconds: float = Field(0.5, gt=0)
    """How often the worker looks for queued requests."""
    lease_seconds: int = Field(120, ge=10)
    """A request taken by a worker that died is retaken after this long. A launch in progress renews it
    every third of this (a heartbeat), so a long local training run keeps it; a dead process's launch
    is recovered within this long, or at once when ``driftgate serve`` restarts on the same host."""
    header_timeout_seconds: float = Field(10.0, gt=0)
    """A connection that has not sent a complete request head (request line and headers) this long after
    it opened, or after its previous answer, is closed: slow clients cannot hold descriptors forever."""
    body_timeout_seconds: float = Field(10.0, gt=0)
    """Reading the whole body may take this long; slower senders get 408 and the connection is closed."""
    max_connections: int = Field(200, ge=1)
    """Open connections beyond this are closed as soon as they are accepted. Keep it at least 160 under the
    process's descriptor limit (``ulimit -n``): the service keeps ~25 files open, and up to two bursts of 64
    connections are accepted before the extra ones are closed."""
    keep_alive_seconds: int = Field(5, ge=1)
    """An idle keep-alive connection is closed after this long (uvicorn's ``timeout_keep_alive``)."""
    launch: LaunchConfig = LaunchConfig()
    """How the worker starts the retraining job (in-process, or through the Jobs API)."""
