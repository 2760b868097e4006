"""``driftgate serve``: the receiver core behind FastAPI, with the worker in a thread.

Routes: ``POST /v1/alerts/databricks-sql`` (the core's answer, verbatim),
``GET /healthz`` and the OpenAPI document FastAPI generates (``/openapi.json``, ``/docs``).

Slow or idle clients are bounded before they can authenticate: uvicorn runs
:func:`uvicorn_options` (an h11 protocol that closes a connection whose request head is
not complete within ``webhook.header_timeout_seconds`` and refuses connections beyond
``webhook.max_connections`` the moment they are accepted; ``timeout_keep_alive``), and the
route reads the body under ``webhook.body_timeout_seconds`` (408 after it).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import tempfile
import time
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from driftgate.core.errors import ConfigError
from driftgate.triggers.state import open_state_store
from driftgate.triggers.webhook.auth import Credentials
from driftgate.triggers.webhook.payload import STATES
from driftgate.triggers.webhook.queue import AlertQueue
from driftgate.triggers.webhook.receiver import Receiver
from driftgate.triggers.webhook.worker import AuditFn, GateFn, Worker, audit_to_log, audit_to_workspace
from driftgate.workspace.jobs import JobLauncher, launcher_for

__all__ = ["Webhook", "open_webhook", "create_app", "serving", "is_loopback", "ALERT_PATH", "uvicorn_options",
           "wait_until_healthy"]

ALERT_PATH = "/v1/alerts/databricks-sql"
ACCEPT_BURST = 64
"""uvicorn's ``backlog``: connections accepted in one burst (and the listen queue's length)."""
log = logging.getLogger("driftgate.webhook")


@dataclass
class Webhook:
    """A receiver and the worker that consumes what it queues; ``state_dir`` holds the queue (and ``state.db``
    with the ``sqlite`` state backend)."""

    receiver: Receiver
    worker: Worker
    state_dir: Path


def _state_dir(settings, ws) -> Path | None:
    if ws is not None and ws.root is not None:
        return Path(ws.root)
    if env := os.environ.get("DRIFTGATE_STATE_DIR"):
        return Path(env)
    if settings.workspace.backend == "local":
        return Path(settings.workspace.root)
    return None


INSTANCE_QUEUE_DIR = Path(tempfile.gettempdir()) / "driftgate"
"""Where the queue goes when no folder is given and the run keys live in Unity Catalog
(``triggers.state.backend: warehouse``): a buffer of this instance between acknowledging and launching."""


def open_webhook(settings, *, ws=None, insecure: bool = False, credentials: Credentials | None = None,
                 launcher: JobLauncher | None = None, gate: GateFn | None = None, audit: AuditFn | None = None,
                 state_dir: str | Path | None = None, clock=None,
                 run_job=None) -> Webhook:
    """Build the receiver and worker for ``settings``.

    Args:
        settings: the validated settings (``settings.webhook`` is used).
        ws: the open workspace; needed for the worker's gate, local launches and the audit table.
        insecure: allow no credentials (callers check the bind address).
        credentials: default: from the environment.
        launcher: default: :func:`driftgate.workspace.jobs.launcher_for` ``settings``.
        gate: default with ``webhook.gate: worker``:
            ``gating.evaluate(ws, ws.settings.gate, trigger="webhook", run_key=<the alert's run key>)``.
        audit: default: the workspace's audit table; without a workspace, that table through the SQL warehouse
            with the ``warehouse`` state backend (:class:`~driftgate.workspace.warehouse_audit.WarehouseAudit`),
            else log lines.
        state_dir: where ``webhook_queue.db`` (and, with ``triggers.state.backend: sqlite``, ``state.db``)
            live; default: the workspace root, ``$DRIFTGATE_STATE_DIR``, the local backend's root. Without one,
            the ``sqlite`` backend is refused (:class:`ConfigError`); the ``warehouse`` backend keeps its run keys
            in Unity Catalog and the queue in :data:`INSTANCE_QUEUE_DIR`.
        clock: unix-seconds clock for both (tests).
        run_job: the task graph a local launch runs (the application passes
            :func:`driftgate.pipeline.run_retraining_job`).
    """
    import time

    cfg = settings.webhook
    folder = Path(state_dir) if state_dir is not None else _state_dir(settings, ws)
    store, _ = open_state_store(settings.triggers.state, folder=folder)
    folder = folder if folder is not None else INSTANCE_QUEUE_DIR
    queue = AlertQueue(folder / "webhook_queue.db", synchronous="FULL" if cfg.fsync_acks else "NORMAL",
                       checkpoints=False)
    clock = clock or time.time
    receiver = Receiver(cfg, queue=queue, credentials=credentials, insecure=insecure, clock=clock)
    if gate is None and cfg.gate == "worker":
        if ws is None:
            raise ConfigError("webhook.gate: 'worker' needs the metric tables; use 'job' where no workspace is "
                              "open (the job's evaluate_drift task then runs the gate)", key="webhook.gate")
        gate = _shared_gate(ws)
    worker = Worker(cfg, queue=AlertQueue(queue.path, synchronous="NORMAL"), store=store, 
                    launcher=launcher or launcher_for(settings, ws, run_job=run_job),
                    gate=gate if cfg.gate == "worker" else None,
                    audit=audit if audit is not None else _default_audit(settings, ws, store), clock=clock)
    return Webhook(receiver, worker, folder)


def _default_audit(settings, ws, store) -> AuditFn:
    """The workspace's events table; without a workspace, the same table through the SQL warehouse of
    ``triggers.state`` (backend ``warehouse``); else log lines."""
    if ws is not None:
        return audit_to_workspace(ws)
    if settings.triggers.state.backend == "warehouse":
        from driftgate.workspace.warehouse_audit import WarehouseAudit

        return WarehouseAudit.from_settings(settings, client=store.sql.client)
    return audit_to_log


def _shared_gate(ws) -> GateFn:
    def evaluate(*, run_key: str | None = None):
        from driftgate import gating  # imported when first used: it pulls in MLflow

        return gating.evaluate(ws, ws.settings.gate, trigger="webhook", run_key=run_key)

    return evaluate


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_REQUEST_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "title": "driftgate alert template",
            "type": "object",
            "required": ["state"],
            "properties": {
                "state": {"type": "string", "enum": list(STATES)},
                "alert_id": {"type": "string"},
                "alert_name": {"type": "string"},
                "alert_url": {"type": "string"},
                "evaluated_at": {"type": "string", "format": "date-time"},
                "value": {"type": ["string", "number"]},
                "threshold": {"type": ["string", "number"]},
                "column": {"type": "string"},
            },
        },
        {
            "title": "current Databricks SQL alert payload",
            "description": "https://docs.databricks.com/sql/user/alerts/webhook-payload; a driftgate template in "
                           "custom_description is read from there",
            "type": "object",
            "required": ["alert"],
            "properties": {
                "event": {"type": "string"},
                "url_base": {"type": "string"},
                "alert": {
                    "type": "object",
                    "required": ["alert"],
                    "properties": {
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "alert": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": {"type": "string"},
                                "name": {"type": "string"},
                                "custom_summary": {"type": "string"},
                                "custom_description": {"type": "string"},
                                "evaluations": {"type": "array", "items": {"type": "object", "properties": {
                                    "state": {"type": "string", "enum": ["TRIGGERED", "OK", "UNKNOWN", "ERROR"]},
                                    "last_evaluated_at": {"type": "string", "format": "date-time"},
                                    "source": {"type": "object"},
                                    "threshold": {"type": "object"},
                                }}},
                            },
                        },
                    },
                },
            },
        },
        {
            "title": "legacy Databricks SQL alert payload",
            "type": "object",
            "required": ["alert"],
            "properties": {
                "event": {"type": "string"},
                "alert": {
                    "type": "object",
                    "required": ["id", "state"],
                    "properties": {
                        "id": {"type": ["string", "integer"]},
                        "name": {"type": "string"},
                        "state": {"type": "string"},
                        "last_triggered_at": {"type": "string"},
                        "options": {"type": "object"},
                    },
                },
            },
        },
    ]
}
_ANSWER = {"content": {"application/json": {"schema": {"type": "object"}}}}


def create_app(webhook: Webhook, *, run_worker: bool = True) -> FastAPI:
    """The FastAPI app; the worker runs while the app does (``run_worker``)."""

    @asynccontextmanager
    async def lifespan(_app):
        if run_worker:
            webhook.worker.start()
        try:
            yield
        finally:
            if run_worker:
                webhook.worker.stop()

    app = FastAPI(title="driftgate webhook", version="1", lifespan=lifespan,
                  description="Receives Databricks SQL alerts; the shared gate decides whether to retrain.")
    limit = webhook.receiver.config.max_body_bytes
    body_timeout = webhook.receiver.config.body_timeout_seconds
    # Without fsync an acknowledgement is a ~0.2 ms SQLite insert: cheaper on the event loop
    # than a hop to the thread pool. A synced insert waits for the disk, so it goes to a thread.
    inline = not webhook.receiver.config.fsync_acks

    @app.post(
        ALERT_PATH,
        summary="Receive a Databricks SQL alert notification",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _REQUEST_SCHEMA}}}},
        responses={code: {"description": text, **_ANSWER} for code, text in (
            (200, "duplicate delivery, or a state other than TRIGGERED (acknowledged, not launched)"),
            (202, "queued: the worker will run the gate"), (400, "the body is not a valid alert"),
            (401, "missing or wrong credentials"), (408, "body not received in time"), (413, "body too large"),
            (415, "not application/json"),
            (503, "the queue could not be written; retry"))},
    )
    async def receive_alert(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            return JSONResponse({"error": f"body: must be at most {limit} bytes"}, status_code=413)
        body = bytearray()
        try:
            async with asyncio.timeout(body_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > limit:  # stop reading early; the core would refuse it anyway
                        return JSONResponse({"error": f"body: must be at most {limit} bytes"}, status_code=413)
        except TimeoutError:
            return JSONResponse({"error": f"body: not received within {body_timeout:g} s"}, status_code=408,
                                headers={"Connection": "close"})
        if inline:
            status, answer = webhook.receiver.handle(request.headers.items(), bytes(body))
        else:
            status, answer = await run_in_threadpool(webhook.receiver.handle, request.headers.items(), bytes(body))
        headers = {"WWW-Authenticate": 'Basic realm="driftgate"'} if status == 401 else None
        return JSONResponse(answer, status_code=status, headers=headers)

    @app.get("/healthz", summary="Liveness, worker state, queue depth, launches in progress and stuck requests")
    def healthz() -> dict[str, Any]:
        held = webhook.worker.health()
        alive = webhook.worker.alive or not run_worker
        return {"status": "ok" if alive and not held["stuck"] else "degraded",
                "worker": "running" if webhook.worker.alive else "stopped",
                "queue": webhook.receiver.queue.counts(), **held}

    return app


def uvicorn_options(config) -> dict[str, Any]:
    """uvicorn settings that bound slow and idle clients (``webhook`` settings: header deadline,
    connection limit, keep-alive); pass them to ``uvicorn.run`` / ``uvicorn.Config``."""
    # asyncio accepts up to ``backlog`` connections per wake-up, and a refused one is closed on the
    # loop's next turn, so descriptors can briefly run two backlogs past max_connections;
    # connections beyond that wait in the kernel's queue, which costs this process no descriptor.
    return {"http": _guarded_protocol(config.header_timeout_seconds, config.max_connections),
            "timeout_keep_alive": config.keep_alive_seconds, "h11_max_incomplete_event_size": 16 * 1024,
            "backlog": ACCEPT_BURST}


def _guarded_protocol(header_timeout: float, max_connections: int):
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    refused = {"count": 0, "logged_at": 0.0}

    class GuardedH11Protocol(H11Protocol):
        """uvicorn's h11 protocol with a request-head deadline and a connection limit."""

        _refused = False
        _head_timer = None

        def connection_made(self, transport) -> None:
            if len(self.connections) >= max_connections:
                self._refused = True
                transport.abort()  # frees the descriptor now; asyncio still calls connection_lost
                refused["count"] += 1
                now = time.monotonic()
                if now - refused["logged_at"] > 10:  # one line per 10 s, not one per connection
                    log.warning("webhook: %d connection(s) refused: %d open, limit %d (webhook.max_connections)",
                                refused["count"], len(self.connections), max_connections)
                    refused.update(count=0, logged_at=now)
                return
            super().connection_made(transport)
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._cancel_head_timer()  # the head is complete; the route bounds the body

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        def connection_lost(self, exc) -> None:
            if self._refused:
                return
            self._cancel_head_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol


def wait_until_healthy(base_url: str, process, timeout: float = 60.0) -> None:
    """Wait for ``GET /healthz`` of a service started as a child ``process`` (tests, benchmarks).

    Raises:
        RuntimeError: the process exited, or did not answer within ``timeout`` seconds.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{base_url}/healthz", timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError(f"{base_url}: the service exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base_url}: the service did not answer within {timeout:g} s") from None
            time.sleep(0.2)


@contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL (tests, benchmarks).

    ``port=0`` picks a free port.
    """
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
