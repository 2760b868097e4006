"""The trigger interface: one ``tick`` that returns run requests or a skip reason, plus a cursor.

Modelled on Dagster sensors. A trigger is a small object with a ``name`` and one
decision method, :meth:`Trigger.tick`. The runner (:mod:`driftgate.triggers.runner`) owns all I/O
that matters for correctness: it reads the trigger's cursor from the
:class:`~driftgate.triggers.state.StateStore`, calls ``tick``, claims each request's ``run_key``
before launching (so a replay cannot launch twice) and saves the new cursor after.

A trigger never launches anything itself and never writes the state store; it only
looks at what it watches (tables, clocks, queues) and says what should run.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

__all__ = ["RunRequest", "SkipReason", "TickResult", "TickContext", "Trigger", "Clock"]

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RunRequest:
    """Ask the runner to start the retraining job once for the fact named by ``run_key``.

    Attributes:
        run_key: deterministic key of the triggering fact (``delta:{table}@v{version}``,
            ``schedule:{name}:{iso time}``); on Databricks it becomes the Jobs API
            ``idempotency_token``.
        details: JSON-serialisable context (versions seen, alert payload summary).
        job_parameters: parameters for the job run (``reason``...), strings only.
    """

    run_key: str
    details: dict[str, Any] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.run_key or not isinstance(self.run_key, str):
            raise ValueError(f"RunRequest.run_key must be a non-empty string, got {self.run_key!r}")


@dataclass(frozen=True)
class SkipReason:
    """Why a tick asked for nothing. Always logged: a silent tick is a bug."""

    reason: str


@dataclass(frozen=True)
class TickResult:
    """What a tick decided: requests (possibly none) or a skip reason, and the next cursor.

    ``cursor=None`` keeps the previous cursor unchanged.
    """

    requests: tuple[RunRequest, ...] = ()
    skip: SkipReason | None = None
    cursor: str | None = None

    @classmethod
    def fire(cls, *requests: RunRequest, cursor: str | None = None) -> "TickResult":
        return cls(requests=tuple(requests), cursor=cursor)

    @classmethod
    def skipped(cls, reason: str, *, cursor: str | None = None) -> "TickResult":
        return cls(skip=SkipReason(reason), cursor=cursor)

    def __post_init__(self):
        if not self.requests and self.skip is None:
            raise ValueError("a tick must return run requests or a SkipReason saying why not")


@dataclass
class TickContext:
    """What a trigger may look at during a tick.

    Attributes:
        now: the tick time (UTC); tests drive it with a controllable clock.
        cursor: the cursor this trigger returned last time, or None on the first tick.
        ws: the workspace (tables, settings), or None for triggers that need none.
        state: the state store, read-only by convention (queued requests, history).
    """

    now: datetime
    cursor: str | None
    ws: Any = None
    state: Any = None


class Trigger(ABC):
    """Base class of every trigger; subclasses implement :meth:`tick`.

    Args:
        name: the trigger's name: its cursor key and the ``source`` of its run keys.
    """

    #: Entry-point name under ``driftgate.triggers`` (set by subclasses).
    kind: str = ""

    def __init__(self, name: str | None = None):
        self.name = name or self.kind or type(self).__name__

    @abstractmethod
    def tick(self, context: TickContext) -> TickResult:
        """Look at what this trigger watches and return run requests or a skip reason."""

    def describe(self) -> str:
        return f"{self.kind or type(self).__name__} trigger {self.name!r}"
