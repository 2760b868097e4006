"""The schedule trigger: fire once per cron occurrence (like Jobs ``schedule``).

The cursor is the last occurrence fired (ISO time). A tick fires for the latest
occurrence at or before ``now`` that is newer than the cursor; occurrences missed while
the runner was down collapse into one run (as a periodic job does not replay a backlog).
On the first tick the latest past occurrence becomes the baseline and nothing fires.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter

from driftgate.triggers.base import RunRequest, TickContext, TickResult, Trigger

__all__ = ["ScheduleTrigger"]


class ScheduleTrigger(Trigger):
    """Fire on a cron expression (5 fields, UTC).

    Args:
        cron: e.g. ``"0 6 * * *"`` (every day at 06:00 UTC).
        name: cursor key and run-key source (default ``schedule``).
    """

    kind = "schedule"

    def __init__(self, cron: str, *, name: str | None = None):
        super().__init__(name)
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ValueError(f"schedule: cron must be a cron expression like '0 6 * * *', got {cron!r}")
        self.cron = cron

    def latest(self, now: datetime) -> datetime:
        """The latest occurrence at or before ``now``."""
        # croniter's get_prev is strict; nudge so an occurrence exactly at `now` counts.
        return croniter(self.cron, now + timedelta(microseconds=1)).get_prev(datetime)

    def tick(self, context: TickContext) -> TickResult:
        due = self.latest(context.now)
        if context.cursor is None:
            return TickResult.skipped(f"first tick: baseline {due.isoformat()}; next occurrence after it fires",
                                      cursor=due.isoformat())
        try:
            last = datetime.fromisoformat(context.cursor)
        except ValueError:
            return TickResult.skipped(f"cursor {context.cursor!r} is not a time; baseline reset to {due.isoformat()}",
                                      cursor=due.isoformat())
        if due <= last:
            nxt = croniter(self.cron, context.now).get_next(datetime)
            return TickResult.skipped(f"not due: next occurrence {nxt.isoformat()}")
        request = RunRequest(
            run_key=f"schedule:{self.name}:{due.isoformat()}",
            details={"cron": self.cron, "occurrence": due.isoformat(), "previous": last.isoformat()},
            job_parameters={"reason": "schedule"},
        )
        return TickResult.fire(request, cursor=due.isoformat())
