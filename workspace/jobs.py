"""Job launching: the retraining job, started locally or through the Databricks Jobs API.

A trigger that decided to retrain hands a :class:`LaunchRequest` to a
:class:`JobLauncher`. Three implementations share one small interface:

* :class:`DatabricksJobLauncher` calls ``jobs.run_now`` (or ``jobs.submit``) through
  ``databricks-sdk`` with the run key as ``idempotency_token``, so a retried or
  duplicated launch yields the same run;
* :class:`LocalJobLauncher` runs the same task graph in-process
  (:func:`driftgate.pipeline.run_retraining_job`);
* :class:`FakeJobLauncher` records calls, for tests and dry runs.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Literal, Protocol, runtime_checkable

from driftgate.core.errors import DriftgateError, LaunchError

__all__ = [
    "LaunchRequest", "LaunchResult", "JobLauncher", "DatabricksJobLauncher", "LocalJobLauncher",
    "FakeJobLauncher", "TransientLaunchError", "idempotency_token", "launcher_for",
]

MAX_TOKEN_CHARS = 64


class TransientLaunchError(LaunchError):
    """The launch failed in a way worth retrying later (throttling, 5xx, network)."""


@dataclass(frozen=True)
class LaunchRequest:
    """One request to start the retraining job."""

    run_key: str
    """Deterministic key of the fact that triggered (``alert:<id>:...``); the Jobs idempotency token."""
    trigger: str
    """What asks: ``webhook``, ``table_update``, ``schedule``, ``manual``."""
    parameters: dict[str, str] = field(default_factory=dict)
    """Job parameters (strings, as the Jobs API takes them)."""


@dataclass(frozen=True)
class LaunchResult:
    """What a launcher started."""

    run_id: str
    state: Literal["running", "succeeded", "failed"]
    """``running`` for a remote run that was started; local runs finish before returning."""
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class JobLauncher(Protocol):
    """Starts the retraining job for a request; raises :class:`LaunchError` when it cannot."""

    idempotent: bool
    """True when launching the same run key twice starts one run (Jobs API idempotency token)."""

    def launch(self, request: LaunchRequest) -> LaunchResult: ...


def idempotency_token(run_key: str) -> str:
    """The Jobs API ``idempotency_token`` for ``run_key`` (at most 64 characters).

    Short keys are used as they are, so the token reads like the key in the Jobs UI;
    longer ones become a digest, because cutting them could make two keys collide.
    """
    if not run_key:
        raise ValueError("run_key must be a non-empty string")
    if len(run_key) <= MAX_TOKEN_CHARS:
        return run_key
    return "dg-" + hashlib.sha256(run_key.encode()).hexdigest()[: MAX_TOKEN_CHARS - 3]


class DatabricksJobLauncher:
    """Launch through ``databricks-sdk``: ``jobs.run_now`` on a defined job, or ``jobs.submit``.

    Throttling (429) and 503 answers are retried inside the SDK's API client (it honours
    ``Retry-After``); 500/504 and network failures are retried here with the SDK's
    :func:`databricks.sdk.retries.retried`, safe because the idempotency token makes
    every attempt the same run. If retries run out the error is a
    :class:`TransientLaunchError` and the caller keeps the request queued.

    Args:
        client: a ``WorkspaceClient`` (default: one built from the environment).
        job_id: the job to ``run_now``; required unless ``submit_run`` is given.
        job_parameters: parameters added to every run (request parameters win).
        queue: send ``queue: {enabled: true}``.
        submit_run: a ``runs/submit`` body (``run_name``, ``tasks``...) to use ``jobs.submit`` instead.
        retry_timeout_seconds: how long one :meth:`launch` keeps retrying.
        clock: a ``databricks.sdk.clock.Clock`` (tests pass one that does not sleep).
    """

    idempotent = True

    def __init__(self, client=None, *, job_id: int | None = None, job_parameters: dict[str, str] | None = None,
                 queue: bool = True, submit_run: dict[str, Any] | None = None,
                 retry_timeout_seconds: float = 60.0, clock=None):
        if job_id is None and not submit_run:
            raise LaunchError("webhook.launch.job_id: must be set to launch on Databricks (or set submit_run), got None")
        self._client = client
        self.job_id = job_id
        self.job_parameters = dict(job_parameters or {})
        self.queue = queue
        self.submit_run = submit_run
        self.retry_timeout_seconds = retry_timeout_seconds
        self.clock = clock

    @property
    def client(self):
        # Built on first use: the SDK resolves the host when constructed, and a receiver
        # must start (and acknowledge alerts) even while Databricks is unreachable.
        if self._client is None:
            from databricks.sdk import WorkspaceClient

            self._client = WorkspaceClient()
        return self._client

    def launch(self, request: LaunchRequest) -> LaunchResult:
        """Start the run (or find the one already started with this run key's token).

        Raises:
            TransientLaunchError: throttled or 5xx until the retry budget ran out.
            LaunchError: refused for good (bad job id, permissions); the message says why.
        """
        from databricks.sdk import errors as sdk_errors
        from databricks.sdk.retries import retried

        token = idempotency_token(request.run_key)
        transient = (sdk_errors.InternalError, sdk_errors.TemporarilyUnavailable, sdk_errors.DeadlineExceeded)

        @retried(on=list(transient), timeout=timedelta(seconds=self.retry_timeout_seconds), clock=self.clock)
        def call():
            return self._call(request, token)

        try:
            waiter = call()
        except Exception as exc:  # noqa: BLE001 - translated into the driftgate tree right here
            raise _translate(exc, request.run_key) from exc
        run_id = getattr(waiter, "run_id", None)
        if run_id is None and getattr(waiter, "response", None) is not None:
            run_id = getattr(waiter.response, "run_id", None)
        if run_id is None:
            raise LaunchError(f"run key {request.run_key}: the Jobs API answered without a run_id",
                              run_key=request.run_key)
        mode = "submit" if self.submit_run else "run_now"
        return LaunchResult(str(run_id), "running", {"mode": mode, "idempotency_token": token, "job_id": self.job_id})

    def _call(self, request: LaunchRequest, token: str):
        from databricks.sdk.service import jobs

        queue = jobs.QueueSettings(enabled=True) if self.queue else None
        if self.submit_run:
            body = dict(self.submit_run)
            body.pop("idempotency_token", None)
            tasks = [jobs.SubmitTask.from_dict(t) for t in body.pop("tasks", [])]
            return self.client.jobs.submit(
                run_name=body.pop("run_name", f"driftgate retrain {request.run_key}"),
                tasks=tasks, idempotency_token=token, queue=queue,
                timeout_seconds=body.pop("timeout_seconds", None),
            )
        parameters = {**self.job_parameters, **request.parameters}
        return self.client.jobs.run_now(job_id=self.job_id, job_parameters=parameters or None,
                                        idempotency_token=token, queue=queue)


def _translate(exc: Exception, run_key: str) -> LaunchError:
    import requests
    from databricks.sdk import errors as sdk_errors

    transient = (sdk_errors.TooManyRequests, sdk_errors.InternalError, sdk_errors.TemporarilyUnavailable,
                 sdk_errors.DeadlineExceeded, requests.ConnectionError, requests.Timeout)
    # The SDK's retry loops end in TimeoutError/RuntimeError raised from the last API error.
    root = exc.__cause__ if isinstance(exc, TimeoutError | RuntimeError) and exc.__cause__ else exc
    what = f"{type(root).__name__}: {root}".strip()
    if isinstance(root, transient):
        return TransientLaunchError(f"run key {run_key}: Jobs API still failing after retries ({what})",
                                    run_key=run_key)
    return LaunchError(f"run key {run_key}: Jobs API refused the launch ({what})", run_key=run_key)


class LocalJobLauncher:
    """Run the retraining task graph in this process, exactly as the table trigger does.

    Not idempotent across crashes: the caller marks the key ``running`` first, so a
    restart does not start the same key twice.
    """

    idempotent = False

    def __init__(self, ws, run_job: Callable[..., Any]):
        """``run_job(ws, *, trigger, run_key)`` is the application's task graph
        (:func:`driftgate.pipeline.run_retraining_job`), injected so this adapter never imports it."""
        self.ws = ws
        self.run_job = run_job

    def launch(self, request: LaunchRequest) -> LaunchResult:
        try:
            result = self.run_job(self.ws, trigger=request.trigger, run_key=request.run_key)
        except DriftgateError as exc:
            raise LaunchError(f"run key {request.run_key}: local retraining job failed: {exc}",
                              run_key=request.run_key) from exc
        details = result.as_dict() if hasattr(result, "as_dict") else {}
        return LaunchResult(str(result.job_run_id), "succeeded", details)


class FakeJobLauncher:
    """Counts launches and never starts anything; ``fail_with`` raises, in order, before succeeding."""

    def __init__(self, *, idempotent: bool = True, fail_with: list[Exception] | None = None):
        self.idempotent = idempotent
        self.requests: list[LaunchRequest] = []
        self.fail_with = list(fail_with or [])
        self._lock = threading.Lock()

    @property
    def launches(self) -> int:
        return len(self.requests)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        with self._lock:
            if self.fail_with:
                raise self.fail_with.pop(0)
            self.requests.append(request)
            return LaunchResult(f"fake-{len(self.requests)}", "running", {"fake": True})


def launcher_for(settings, ws=None, *, client=None, run_job: Callable[..., Any] | None = None) -> JobLauncher:
    """The launcher ``settings.webhook.launch`` asks for (``auto``: local for the local backend).

    ``run_job`` is the task graph a local launch runs; the application layer passes it.
    """
    cfg = settings.webhook.launch
    mode = cfg.mode
    if mode == "auto":
        mode = "local" if settings.workspace.backend == "local" else "run_now"
    if mode == "local":
        if ws is None:
            raise LaunchError("webhook.launch.mode: local launching needs an open workspace")
        if run_job is None:
            raise LaunchError("webhook.launch.mode: local launching needs the task graph (run_job)")
        return LocalJobLauncher(ws, run_job)
    return DatabricksJobLauncher(
        client, job_id=cfg.job_id, job_parameters=cfg.job_parameters, queue=cfg.queue,
        submit_run=cfg.submit_run if mode == "submit" else None, retry_timeout_seconds=cfg.retry_timeout_seconds,
    )
