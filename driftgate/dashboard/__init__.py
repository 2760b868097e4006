"""``driftgate dashboard``: one self-contained HTML page over the local tables.

:func:`read_inputs` reads (metric tables, decisions, audit events, aliases, version tags),
:func:`driftgate.dashboard.model.gather` turns that into a :class:`Dashboard` record without I/O,
:func:`driftgate.dashboard.render.render_html` draws it. On Databricks the bundle deploys the
same views as a Lakeview dashboard (``resources/dashboard.lvdash.json``).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from driftgate.dashboard.model import Dashboard, DashboardInputs, gather
from driftgate.dashboard.render import render_html

__all__ = ["Dashboard", "DashboardInputs", "gather", "render_html", "read_inputs", "write_dashboard"]

EVENT_LIMIT = 100_000


def read_inputs(ws) -> DashboardInputs:
    """Everything the page shows, read once through the workspace's adapters."""
    from driftgate.core.errors import RegistryError
    from driftgate.gating.evaluate import output_columns, metric_tables, read_decisions
    from driftgate.monitoring.report import rule_panels
    from driftgate.promotion.intent import aliases as read_aliases
    from driftgate.workspace.audit import read_events

    settings = ws.settings
    gate = settings.gate
    tables = metric_tables(ws, gate)
    drift, profile = (ws.tables.read(tables[k]) if ws.tables.exists(tables[k]) else None
                      for k in ("drift", "profile"))
    rules = gate.effective_rules() if gate.mode == "rules" else []
    panels = tuple(rule_panels(rules, exclude=output_columns(ws)))
    events = tuple(read_events(ws, limit=EVENT_LIMIT))
    current = read_aliases(ws)
    versions = {v for v in current.values() if v} | {
        e["subject"].rsplit("@", 1)[1] for e in events
        if e["kind"] in ("train", "shadow", "promotion", "refusal", "init") and "@" in (e.get("subject") or "")}
    tags: dict[str, dict[str, str]] = {}
    for version in sorted(versions):
        try:
            tags[version] = dict(ws.registry.get_version(settings.project.model_name, version).tags)
        except RegistryError:
            continue
    grains = [r.filters.granularity for r in rules] or list(settings.monitor.granularities or [])
    return DashboardInputs(
        model_name=settings.project.model_name, monitor=settings.monitor, panels=panels, drift=drift,
        profile=profile, decisions=tuple(read_decisions(ws, limit=EVENT_LIMIT)), events=events,
        aliases=current, version_tags=tags, granularity=grains[0] if grains else None)


def write_dashboard(ws, out: str | Path, *, as_of: datetime | None = None) -> Dashboard:
    """Read, gather and write the page to ``out``; returns the record it drew."""
    record = gather(read_inputs(ws), generated_at=datetime.now(timezone.utc), as_of=as_of)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(record), encoding="utf-8")
    return record
