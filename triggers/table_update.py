"""The table-update trigger, with the documented semantics of Jobs ``trigger.table_update``.

* ``condition``: ``ANY_UPDATED`` fires when any watched table has a new Delta version
  since the last fire; ``ALL_UPDATED`` waits until every table has one.
* ``wait_after_last_change_seconds``: fire only after no new version has appeared for this
  long, so a burst of writes (one monitor refresh writes two tables) fires once.
* ``min_time_between_triggers_seconds``: fire only this long after the last fire; changes
  during the cooldown are not lost, they fire when it ends.

Change times are the tick times at which a new version was first seen (the polling
equivalent of the Jobs service noticing a commit), so a controllable clock drives every
timing decision in tests.

Cursor (JSON, opaque to the runner)::

    {"fired": {table: version at the last fire (-1: absent)},
     "seen": {table: last version seen}, "changed_at": {table: ISO time it was first seen},
     "last_fired": ISO time or null}

A missing cursor means a first start: the current versions become the baseline and
nothing fires, as a newly created Jobs trigger waits for the next update. A corrupt
cursor is rebuilt from the last run this trigger claimed in the state store, so changes
after that run are still seen and none is fired twice (the run key dedupes too).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Protocol

from driftgate.core.errors import TableError
from driftgate.triggers.base import RunRequest, TickContext, TickResult, Trigger

__all__ = ["TableUpdateTrigger", "VersionSource", "run_key_for"]

log = logging.getLogger("driftgate.triggers")


class VersionSource(Protocol):
    """Where table versions come from: ``ws.tables`` or a fake in tests."""

    def version(self, name: str) -> int: ...


def run_key_for(versions: dict[str, int]) -> str:
    """``delta:{table}@v{version}``; several tables are joined with ``+`` in name order."""
    return "delta:" + "+".join(f"{t}@v{v}" for t, v in sorted(versions.items()))


class TableUpdateTrigger(Trigger):
    """Fire when watched Delta tables get new versions (``ANY_UPDATED`` / ``ALL_UPDATED``).

    Args:
        table_names: three-level table names to watch.
        condition: ``ANY_UPDATED`` or ``ALL_UPDATED``.
        min_time_between_triggers_seconds: cooldown after a fire.
        wait_after_last_change_seconds: quiet time required after the last new version.
        versions: where versions come from; default the tick context's ``ws.tables``.
        name: cursor key and run-key source (default ``table_update``).
    """

    kind = "table_update"

    def __init__(
        self,
        table_names: list[str],
        *,
        condition: str = "ANY_UPDATED",
        min_time_between_triggers_seconds: int = 60,
        wait_after_last_change_seconds: int = 60,
        versions: VersionSource | None = None,
        name: str | None = None,
    ):
        super().__init__(name)
        if not table_names:
            raise ValueError("table_update: table_names must name at least one table")
        if condition not in ("ANY_UPDATED", "ALL_UPDATED"):
            raise ValueError(f"table_update: condition must be ANY_UPDATED or ALL_UPDATED, got {condition!r}")
        for field_name, value in (("min_time_between_triggers_seconds", min_time_between_triggers_seconds),
                                  ("wait_after_last_change_seconds", wait_after_last_change_seconds)):
            if value < 0:
                raise ValueError(f"table_update: {field_name} must be >= 0, got {value}")
        self.table_names = list(dict.fromkeys(table_names))
        self.condition = condition
        self.cooldown = timedelta(seconds=min_time_between_triggers_seconds)
        self.wait = timedelta(seconds=wait_after_last_change_seconds)
        self.versions = versions

    @classmethod
    def from_config(cls, cfg, *, name: str | None = None, versions: VersionSource | None = None):
        """Build from :class:`driftgate.triggers.config.TableUpdateConfig`."""
        return cls(list(cfg.table_names), condition=cfg.condition,
                   min_time_between_triggers_seconds=cfg.min_time_between_triggers_seconds,
                   wait_after_last_change_seconds=cfg.wait_after_last_change_seconds,
                   versions=versions, name=name)

    def tick(self, context: TickContext) -> TickResult:
        now = context.now
        source = self.versions or (context.ws.tables if context.ws is not None else None)
        if source is None:
            raise ValueError("table_update: no version source (pass versions= or a workspace)")
        current, missing = self._current(source)
        cursor, note = self._load(context, current)

        if note == "baseline":
            return TickResult.skipped(
                f"first tick: baseline versions recorded ({_fmt(current)}); firing on the next update",
                cursor=_dump(cursor))

        # Remember when each new version was first seen (the wait clock restarts per change).
        for table, version in current.items():
            if version < cursor["fired"].get(table, -1):
                # Version went backwards: the table was dropped and recreated; everything in it is new.
                log.warning("table_update %s: version went back to %s; treating it as recreated", table, version)
                cursor["fired"][table] = -1
            if version != cursor["seen"].get(table):
                cursor["seen"][table] = version
                cursor["changed_at"][table] = now.isoformat()
        updated = {t: v for t, v in current.items() if v > cursor["fired"].get(t, -1)}
        prefix = f"{note}; " if note else ""
        gone = f"; table(s) not readable now: {', '.join(missing)}" if missing else ""

        if not updated:
            return TickResult.skipped(f"{prefix}no new versions since the last fire ({_fmt(current)}){gone}",
                                      cursor=_dump(cursor))
        if self.condition == "ALL_UPDATED":
            waiting = [t for t in self.table_names if t not in updated]
            if waiting:
                return TickResult.skipped(
                    f"{prefix}ALL_UPDATED: updated {_fmt(updated)}, still waiting for {', '.join(waiting)}{gone}",
                    cursor=_dump(cursor))
        last_change = max(datetime.fromisoformat(cursor["changed_at"][t]) for t in updated)
        quiet = now - last_change
        if quiet < self.wait:
            return TickResult.skipped(
                f"{prefix}waiting for changes to settle: last change {quiet.total_seconds():.0f}s ago, "
                f"wait_after_last_change_seconds={self.wait.total_seconds():.0f}", cursor=_dump(cursor))
        if cursor["last_fired"]:
            since = now - datetime.fromisoformat(cursor["last_fired"])
            if since < self.cooldown:
                return TickResult.skipped(
                    f"{prefix}cooldown: last fired {since.total_seconds():.0f}s ago, "
                    f"min_time_between_triggers_seconds={self.cooldown.total_seconds():.0f}", cursor=_dump(cursor))

        request = RunRequest(
            run_key=run_key_for(updated),
            details={"versions": dict(current), "updated": updated, "condition": self.condition,
                     "fired": dict(current)},
            job_parameters={"reason": "table_update", "tables": ",".join(sorted(updated))},
        )
        cursor["fired"].update(current)
        cursor["last_fired"] = now.isoformat()
        return TickResult.fire(request, cursor=_dump(cursor))

    def _current(self, source) -> tuple[dict[str, int], list[str]]:
        current: dict[str, int] = {}
        missing: list[str] = []
        for table in self.table_names:
            try:
                current[table] = int(source.version(table))
            except TableError as exc:
                # Briefly missing (being recreated, storage hiccup): not an update, not a crash.
                log.warning("table_update %s: %s", table, exc)
                missing.append(table)
        return current, missing

    def _load(self, context: TickContext, current: dict[str, int]) -> tuple[dict, str | None]:
        if context.cursor is None:
            if context.state is not None and self._last_fire(context) is not None:
                # No cursor but fires on record (state file rebuilt): resume from the last fire.
                return self._recover(context, current, ValueError("no cursor"))
            return self._fresh(current), "baseline"
        try:
            cursor = json.loads(context.cursor)
            if not isinstance(cursor, dict):
                raise ValueError("not an object")
            cursor = {
                "fired": {str(k): int(v) for k, v in dict(cursor.get("fired", {})).items()},
                "seen": {str(k): int(v) for k, v in dict(cursor.get("seen", {})).items()},
                "changed_at": {str(k): str(v) for k, v in dict(cursor.get("changed_at", {})).items()},
                "last_fired": cursor.get("last_fired"),
            }
            for v in [*cursor["changed_at"].values(), *( [cursor["last_fired"]] if cursor["last_fired"] else [])]:
                datetime.fromisoformat(v)
        except (ValueError, TypeError, AttributeError) as exc:
            return self._recover(context, current, exc)
        for table in self.table_names:  # a table added to the watch list starts from its current version
            if table not in cursor["fired"] and table in current:
                cursor["fired"][table] = current[table]
                cursor["seen"][table] = current[table]
        return cursor, None

    def _last_fire(self, context: TickContext):
        if context.state is None:
            return None
        history = [r for r in context.state.history(self.name, limit=20) if "fired" in r.details]
        return history[0] if history else None

    def _fresh(self, current: dict[str, int]) -> dict:
        # A table absent at the baseline counts from -1, so its first version is an update.
        fired = {t: current.get(t, -1) for t in self.table_names}
        return {"fired": fired, "seen": dict(fired), "changed_at": {}, "last_fired": None}

    def _recover(self, context: TickContext, current: dict[str, int], exc: Exception) -> tuple[dict, str]:
        last = self._last_fire(context)
        if last is None:
            log.warning("table_update %s: corrupt cursor (%s); no earlier fire recorded, starting from the "
                        "current versions", self.name, exc)
            return self._fresh(current), "baseline"
        fired = {str(k): int(v) for k, v in last.details["fired"].items()}
        log.warning("table_update %s: corrupt cursor (%s); rebuilt from run %s", self.name, exc, last.run_key)
        cursor = {"fired": fired, "seen": dict(fired), "changed_at": {},
                  "last_fired": last.claimed_at.isoformat()}
        what = "no cursor" if str(exc) == "no cursor" else f"cursor was corrupt ({exc})"
        return cursor, f"{what}; rebuilt from the last fired run {last.run_key}"


def _dump(cursor: dict) -> str:
    return json.dumps(cursor, sort_keys=True)


def _fmt(versions: dict[str, int]) -> str:
    return ", ".join(f"{t}@v{v}" for t, v in sorted(versions.items())) or "none readable"
