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

import enum
import hashlib
import logging
import os
import socket
import threading
import typing
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Literal, Protocol, runtime_checkable

from driftgate.core.errors import DriftgateError, LaunchError

__all__ = [
    "LaunchRequest", "LaunchResult", "JobLauncher", "DatabricksJobLauncher", "LocalJobLauncher",
    "FakeJobLauncher", "TransientLaunchError", "idempotency_token", "launcher_for", "end_running_runs",
    "process_owner", "owner_is_dead", "RUN_KEY_TAGS",
]

MAX_TOKEN_CHARS = 64
RUN_KEY_TAGS = ("driftgate.run_key", "driftgate.reason.run_key")
"""MLflow tags that name the run key a run belongs to (the gate's run; the training run's reason)."""

log = logging.getLogger("driftgate.jobs")


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
    every attempt the same run. Both loops share one budget, ``retry_timeout_seconds``:
    they run on a clock whose sleeps are cut at the launch's deadline and which stops the
    retrying once it has passed, so neither a long ``Retry-After`` nor the SDK's own 300 s
    default can stretch a launch beyond the budget (plus one request). If retries run out the
    error is a :class:`TransientLaunchError` and the caller keeps the request queued.

    ``submit_run`` is the whole ``runs/submit`` body: every field ``jobs.submit`` takes
    (``tasks``, ``environments``, ``git_source``, ``run_as``, ``timeout_seconds``,
    ``email_notifications``, ...) is passed on, converted to the SDK's types; an unknown
    field is refused when the launcher is built.

    Args:
        client: a ``WorkspaceClient`` (default: one built from the environment, with the budget as its
            retry timeout; a client passed in keeps its own ``retry_timeout_seconds``).
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
        self._submit_kwargs = _submit_kwargs(submit_run) if submit_run else None
        self.retry_timeout_seconds = retry_timeout_seconds
        self.clock = _BudgetClock(clock)

    @property
    def client(self):
        # Built on first use: the SDK resolves the host when constructed, and a receiver
        # must start (and acknowledge alerts) even while Databricks is unreachable.
        if self._client is None:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config

            self._client = WorkspaceClient(config=Config(
                retry_timeout_seconds=int(self.retry_timeout_seconds) + 1, clock=self.clock))
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

        self.clock.deadline = self.clock.time() + self.retry_timeout_seconds

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
        if self._submit_kwargs is not None:
            kwargs = {"run_name": f"driftgate retrain {request.run_key}", "queue": queue, **self._submit_kwargs}
            return self.client.jobs.submit(**kwargs, idempotency_token=token)
        parameters = {**self.job_parameters, **request.parameters}
        return self.client.jobs.run_now(job_id=self.job_id, job_parameters=parameters or None,
                                        idempotency_token=token, queue=queue)


class _BudgetClock:
    """A ``databricks.sdk`` clock for one launch at a time: sleeps end at ``deadline``, and a sleep asked
    for after it raises :class:`TimeoutError`, which ends the SDK's retry loops."""

    def __init__(self, base=None):
        from databricks.sdk.clock import RealClock

        self.base = base or RealClock()
        self.deadline = float("inf")

    def time(self) -> float:
        return self.base.time()

    def sleep(self, seconds: float) -> None:
        remaining = self.deadline - self.base.time()
        if remaining <= 0:
            raise TimeoutError("the launch's retry budget (webhook.launch.retry_timeout_seconds) is spent")
        self.base.sleep(min(seconds, remaining))


def _submit_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """``jobs.submit`` keyword arguments from a ``runs/submit`` body, each field in the SDK's type.

    Raises:
        LaunchError: a field ``jobs.submit`` does not take (the message names it).
    """
    from databricks.sdk.service import jobs

    hints = typing.get_type_hints(jobs.JobsAPI.submit)
    kwargs = {}
    for name, value in body.items():
        if name == "idempotency_token":
            continue  # always the run key's
        if name not in hints or name == "return":
            known = ", ".join(sorted(h for h in hints if h not in ("return", "idempotency_token")))
            raise LaunchError(f"webhook.launch.submit_run.{name}: not a runs/submit field; expected one of {known}")
        kwargs[name] = _sdk_value(hints[name], value)
    return kwargs


def _sdk_value(hint: Any, value: Any) -> Any:
    """``value`` (JSON) as the SDK type ``hint`` names: dataclasses via ``from_dict``, enums, lists."""
    if value is None:
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union and len(args) == 1:
        return _sdk_value(args[0], value)
    if origin is list:
        return [_sdk_value(args[0], v) for v in value]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hasattr(hint, "from_dict"):
        return hint.from_dict(value)
    return value


def _translate(exc: Exception, run_key: str) -> LaunchError:
    import requests
    from databricks.sdk import errors as sdk_errors

    transient = (sdk_errors.TooManyRequests, sdk_errors.InternalError, sdk_errors.TemporarilyUnavailable,
                 sdk_errors.DeadlineExceeded, requests.ConnectionError, requests.Timeout)
    # The SDK's retry loops end in TimeoutError/RuntimeError raised from the last API error (or, when
    # the budget clock stops them, raised while handling it).
    last = (exc.__cause__ or exc.__context__) if isinstance(exc, TimeoutError | RuntimeError) else None
    root = last or exc
    what = f"{type(root).__name__}: {root}".strip()
    if isinstance(root, transient):
        return TransientLaunchError(f"run key {run_key}: Jobs API still failing after retries ({what})",
                                    run_key=run_key)
    return LaunchError(f"run key {run_key}: Jobs API refused the launch ({what})", run_key=run_key)


class LocalJobLauncher:
    """Run the retraining task graph in this process, exactly as the table trigger does.

    Not idempotent across crashes: the caller marks the key ``running`` first, so a
    restart does not start the same key twice. Any exception of the task graph (a
    ``ValueError`` from scikit-learn, an MLflow or deltalake error) becomes a
    :class:`LaunchError` naming it, and the MLflow runs it left ``RUNNING`` are ended as
    ``FAILED`` (:meth:`abandon`), as they are for a process that died mid-run.
    """

    idempotent = False

    def __init__(self, ws, run_job: Callable[..., Any]):
        """``run_job(ws, *, trigger, run_key)`` is the application's task graph
        (:func:`driftgate.pipeline.run_retraining_job`), injected so this adapter never imports it."""
        self.ws = ws
        self.run_job = run_job

    def launch(self, request: LaunchRequest) -> LaunchResult:
        from driftgate.workspace.context import run_key_scope

        try:
            with run_key_scope(request.run_key):  # every stage run of the job is tagged with the key
                result = self.run_job(self.ws, trigger=request.trigger, run_key=request.run_key)
        except Exception as exc:  # noqa: BLE001 - the launch boundary: whatever failed, say what and clean up
            what = str(exc) if isinstance(exc, DriftgateError) else f"{type(exc).__name__}: {exc}"
            ended = self.abandon(request.run_key)
            suffix = f"; ended MLflow runs {', '.join(ended)} as FAILED" if ended else ""
            raise LaunchError(f"run key {request.run_key}: local retraining job failed: {what}{suffix}",
                              run_key=request.run_key) from exc
        details = result.as_dict() if hasattr(result, "as_dict") else {}
        return LaunchResult(str(result.job_run_id), "succeeded", details)

    def abandon(self, run_key: str) -> list[str]:
        """End as ``FAILED`` every MLflow run of ``run_key`` still ``RUNNING``; returns their ids.

        Runs are found by their run-key tags (:data:`RUN_KEY_TAGS`); call it only when no
        process runs that key any more (after a failure, or for a dead owner).
        """
        return end_running_runs(self.ws.tracking_uri, run_key)


def end_running_runs(tracking_uri: str, run_key: str) -> list[str]:
    """End as ``FAILED`` the MLflow runs tagged with ``run_key`` that are still ``RUNNING``."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    quoted = run_key.replace("'", "\\'")
    ended = []
    for tag in RUN_KEY_TAGS:
        for run in client.search_runs(experiments, f"tags.`{tag}` = '{quoted}' and attributes.status = 'RUNNING'",
                                      run_view_type=ViewType.ALL):
            if run.info.run_id not in ended:
                client.set_terminated(run.info.run_id, "FAILED")
                ended.append(run.info.run_id)
    if ended:
        log.warning("run key %s: ended MLflow runs %s left RUNNING as FAILED", run_key, ", ".join(ended))
    return ended


def process_owner() -> str:
    """``host:pid`` of this process: who holds a launch, for heartbeats and recovery."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """True if ``owner`` (``host:pid``) names a process of this host that no longer exists."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's, or unknown: only its lease can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
