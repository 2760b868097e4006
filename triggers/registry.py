"""Trigger plug-ins: the entry-point group ``driftgate.triggers``.

A package makes a trigger available by declaring, in its ``pyproject.toml``::

    [project.entry-points."driftgate.triggers"]
    s3_object = "my_package.triggers:S3ObjectTrigger"

The value is a :class:`~driftgate.triggers.base.Trigger` subclass (or any callable returning one)
that accepts its configuration as keyword arguments plus ``name``. driftgate's own
triggers are declared the same way in its ``pyproject.toml``; they are also known here by
module path, so a source checkout works before it is (re)installed.
"""
from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from driftgate.core.errors import ConfigError, TriggerError
from driftgate.triggers.base import Trigger

__all__ = ["GROUP", "BUILTINS", "available", "load", "create", "build_triggers"]

GROUP = "driftgate.triggers"

BUILTINS = {
    "table_update": "driftgate.triggers.table_update:TableUpdateTrigger",
    "schedule": "driftgate.triggers.schedule:ScheduleTrigger",
    "manual": "driftgate.triggers.queued:ManualTrigger",
    "webhook": "driftgate.triggers.queued:WebhookTrigger",
}


def available() -> dict[str, str]:
    """Every known trigger kind → ``module:attribute`` (installed entry points win)."""
    found = dict(BUILTINS)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def load(kind: str) -> Any:
    """The trigger factory registered as ``kind``.

    Raises:
        TriggerError: unknown kind, or its module cannot be imported.
    """
    known = available()
    if kind not in known:
        raise TriggerError(
            f"trigger kind {kind!r} is not registered under the entry-point group {GROUP!r}; "
            f"known: {', '.join(sorted(known))} (is its package installed?)"
        )
    target = known[kind]
    module_name, _, attr = target.partition(":")
    try:
        obj = import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise TriggerError(f"trigger kind {kind!r}: cannot load {target!r}: {exc}") from exc
    if not callable(obj):
        raise TriggerError(f"trigger kind {kind!r}: {target!r} is not a class or factory")
    return obj


def create(kind: str, *, name: str | None = None, where: str | None = None, **config: Any) -> Trigger:
    """Build a trigger of ``kind`` with ``config``; bad configuration is a one-line ConfigError."""
    factory = load(kind)
    where = where or f"trigger {name or kind!r}"
    try:
        trigger = factory(name=name, **config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}", key=where) from exc
    if not isinstance(trigger, Trigger):
        raise TriggerError(f"trigger kind {kind!r}: factory returned {type(trigger).__name__}, not a Trigger")
    return trigger


def build_triggers(settings) -> list[Trigger]:
    """The triggers ``settings.triggers`` enables, in a fixed order."""
    cfg = settings.triggers
    out: list[Trigger] = []
    if cfg.table_update.enabled:
        tu = cfg.table_update
        tables = list(tu.table_names or [settings.monitor.drift_metrics_table])
        out.append(create("table_update", name="table_update", where="triggers.table_update",
                          table_names=tables, condition=tu.condition,
                          min_time_between_triggers_seconds=tu.min_time_between_triggers_seconds,
                          wait_after_last_change_seconds=tu.wait_after_last_change_seconds))
    if cfg.schedule.enabled:
        out.append(create("schedule", name="schedule", where="triggers.schedule", cron=cfg.schedule.cron))
    if cfg.manual.enabled:
        out.append(create("manual", name="manual", where="triggers.manual"))
    if cfg.webhook.enabled:
        out.append(create("webhook", name="webhook", where="triggers.webhook"))
    for i, plugin in enumerate(cfg.plugins):
        if plugin.enabled:
            out.append(create(plugin.kind, name=plugin.name, where=f"triggers.plugins[{i}]", **plugin.config))
    return out
