"""One self-contained HTML page from a :class:`~driftgate.dashboard.model.Dashboard`.

Everything is inline (CSS, SVG charts drawn here, a small script for the shared time cursor and
the event filter): the page makes no network request and opens from a file. The script marks
``<body data-dashboard="ready">`` when it ran through, which the browser test reads.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape

from driftgate.dashboard.model import Chart, Dashboard, Mark

__all__ = ["render_html"]

W, H, LEFT, RIGHT, TOP, BOTTOM = 940, 190, 84, 150, 14, 26
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
           "#393b79")
MARK_COLOURS = {"gate_decision": "#6b7280", "train": "#2563eb", "shadow": "#7c3aed", "promotion": "#16a34a",
                "refusal": "#dc2626", "rollback": "#ea580c", "job_run": "#0f766e", "init": "#16a34a"}

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
"""Nothing loads from anywhere: inline styles and scripts only."""

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111;background:#f7f7f8}
header{background:#111827;color:#fff;padding:14px 24px}header h1{margin:0;font-size:19px}
header p{margin:4px 0 0;color:#cbd5e1;font-size:12px}
main{padding:12px 24px;max-width:1120px}section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;
margin:14px 0;padding:10px 14px}h2{font-size:15px;margin:4px 0 8px}h3{font-size:13px;margin:8px 0 2px;
font-weight:600}svg{display:block}table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;vertical-align:top}th{background:#f3f4f6}
.muted{color:#6b7280}.tag{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;color:#fff}
.filters label{margin-right:10px;font-size:12px}.cursor{stroke:#111;stroke-width:1;opacity:.35}
.legend text{font-size:11px}.axis text{font-size:10px;fill:#555}.empty{font-size:12px;fill:#888}
#cursor-time{font-size:12px;color:#374151;min-height:16px}
"""

_JS = """
(function(){
  var body=document.body, out=document.getElementById('cursor-time');
  var t0=Number(body.dataset.start), t1=Number(body.dataset.end);
  var plotW=Number(body.dataset.plotw), left=Number(body.dataset.left);
  function at(x){return new Date(t0+(t1-t0)*(x-left)/plotW);}
  document.querySelectorAll('svg.timeaxis').forEach(function(svg){
    svg.addEventListener('mousemove',function(ev){
      var r=svg.getBoundingClientRect(), x=(ev.clientX-r.left)*svg.viewBox.baseVal.width/r.width;
      if(x<left||x>left+plotW||!(t1>t0)) return;
      document.querySelectorAll('line.cursor').forEach(function(l){
        l.setAttribute('x1',x);l.setAttribute('x2',x);l.style.display='';});
      out.textContent=at(x).toISOString().replace('T',' ').slice(0,16)+' UTC';
    });
  });
  document.querySelectorAll('.filters input').forEach(function(box){
    box.addEventListener('change',function(){
      document.querySelectorAll('[data-kind="'+box.value+'"]').forEach(function(el){
        el.style.display=box.checked?'':'none';});
    });
  });
  body.dataset.dashboard='ready';
})();
"""


def _ms(t: datetime) -> float:
    return t.timestamp() * 1000.0


def _fmt(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t is not None else "-"


def _num(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:.4g}"


class _Axis:
    """The shared time axis (every chart and the timeline use the same x) and one chart's y."""

    def __init__(self, start: datetime | None, end: datetime | None):
        self.t0 = _ms(start) if start else 0.0
        self.t1 = _ms(end) if end else 1.0
        if self.t1 <= self.t0:
            self.t0, self.t1 = self.t0 - 43_200_000, self.t1 + 43_200_000
        self.width = W - LEFT - RIGHT

    def x(self, t: datetime) -> float:
        return LEFT + (_ms(t) - self.t0) / (self.t1 - self.t0) * self.width

    def ticks(self, height: float) -> str:
        parts = []
        for i in range(6):
            ms = self.t0 + (self.t1 - self.t0) * i / 5
            x = LEFT + self.width * i / 5
            label = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%m-%d")
            parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{TOP}' y2='{height - BOTTOM}' stroke='#eee'/>"
                         f"<text x='{x:.1f}' y='{height - BOTTOM + 14}' text-anchor='middle'>{label}</text>")
        return "<g class='axis'>" + "".join(parts) + "</g>"


def _marks_svg(axis: _Axis, marks: tuple[Mark, ...], height: float) -> str:
    """Thin vertical lines at promotions, refusals, retrains, rollbacks (not every gate decision)."""
    parts = []
    for m in marks:
        if m.kind not in ("promotion", "refusal", "rollback", "train"):
            continue
        x = axis.x(m.at)
        parts.append(f"<line data-kind='{m.kind}' x1='{x:.1f}' x2='{x:.1f}' y1='{TOP}' y2='{height - BOTTOM}' "
                     f"stroke='{MARK_COLOURS.get(m.kind, '#999')}' stroke-dasharray='2,3'>"
                     f"<title>{escape(f'{_fmt(m.at)} {m.kind} {m.status} {m.subject}')}</title></line>")
    return "".join(parts)


def _chart_svg(chart: Chart, axis: _Axis, marks: tuple[Mark, ...]) -> str:
    values = [v for line in chart.lines for _, v in line.points]
    values += [v for _, lo, hi in chart.band for v in (lo, hi)]
    values += [v for v in (chart.threshold, chart.baseline) if v is not None and v == v]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM)

    parts = [f"<svg class='timeaxis' viewBox='0 0 {W} {H}' width='{W}' height='{H}' role='img' "
             f"aria-label='{escape(chart.title)}'>", axis.ticks(H)]
    for i in range(3):
        v = lo + (hi - lo) * (i + 0.5) / 3
        parts.append(f"<g class='axis'><text x='{LEFT - 4}' y='{y(v) + 3:.1f}' text-anchor='end'>{_num(v)}</text></g>")
    if chart.band:
        upper = " ".join(f"{axis.x(t):.1f},{y(h):.1f}" for t, _, h in chart.band)
        lower = " ".join(f"{axis.x(t):.1f},{y(lo_):.1f}" for t, lo_, _ in reversed(chart.band))
        parts.append(f"<polygon class='band' points='{upper} {lower}' fill='#f59e0b' opacity='0.18'>"
                     f"<title>estimate's 95% band</title></polygon>")
    parts.append(_marks_svg(axis, marks, H))
    legend = []
    for i, line in enumerate(chart.lines):
        colour = PALETTE[i % len(PALETTE)]
        dash = " stroke-dasharray='5,3'" if line.label == "estimated" else ""
        pts = " ".join(f"{axis.x(t):.1f},{y(v):.1f}" for t, v in line.points)
        if pts:
            parts.append(f"<polyline class='series' fill='none' stroke='{colour}' stroke-width='1.6'{dash} "
                         f"points='{pts}'><title>{escape(line.label)}</title></polyline>")
        legend.append((colour, line.label))
    for value, colour, label in ((chart.threshold, "#dc2626", "threshold"), (chart.baseline, "#6b7280", "baseline")):
        if value is not None and value == value:
            parts.append(f"<line class='{label}' x1='{LEFT}' x2='{W - RIGHT}' y1='{y(value):.1f}' y2='{y(value):.1f}' "
                         f"stroke='{colour}' stroke-dasharray='6,4'/>")
            legend.append((colour, f"{label} {_num(value)}"))
    if chart.empty:
        parts.append(f"<text class='empty' x='{LEFT + axis.width / 2}' y='{H / 2}' text-anchor='middle'>"
                     "no values yet</text>")
    parts.append(f"<line class='cursor' x1='0' x2='0' y1='{TOP}' y2='{H - BOTTOM}' style='display:none'/>")
    parts.append("<g class='legend'>")
    for i, (colour, label) in enumerate(legend[:12]):
        ly = TOP + 6 + i * 14
        parts.append(f"<rect x='{W - RIGHT + 8}' y='{ly - 8}' width='10' height='3' fill='{colour}'/>"
                     f"<text x='{W - RIGHT + 22}' y='{ly}'>{escape(label[:22])}</text>")
    parts.append("</g></svg>")
    return "".join(parts)


def _timeline_svg(d: Dashboard, axis: _Axis) -> str:
    kinds = [k for k in MARK_COLOURS if any(m.kind == k for m in d.marks)]
    height = TOP + BOTTOM + 18 * max(1, len(kinds))
    parts = [f"<svg class='timeaxis' viewBox='0 0 {W} {height}' width='{W}' height='{height}' role='img' "
             "aria-label='events'>", axis.ticks(height)]
    for row, kind in enumerate(kinds):
        cy = TOP + 9 + row * 18
        parts.append(f"<g class='axis'><text x='{LEFT - 4}' y='{cy + 3}' text-anchor='end'>{kind}</text></g>")
        for m in d.marks:
            if m.kind != kind:
                continue
            recorded = f" (recorded {_fmt(m.recorded_at)})" if m.recorded_at and m.recorded_at != m.at else ""
            tip = escape(f"{_fmt(m.at)}{recorded} {m.kind} {m.status} {m.subject} {m.text}"[:300])
            parts.append(f"<circle data-kind='{kind}' cx='{axis.x(m.at):.1f}' cy='{cy}' r='5' "
                         f"fill='{MARK_COLOURS[kind]}'><title>{tip}</title></circle>")
    parts.append(f"<line class='cursor' x1='0' x2='0' y1='{TOP}' y2='{height - BOTTOM}' style='display:none'/></svg>")
    return "".join(parts)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]], row_attrs: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        body.append(f"<tr{attrs}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    if not rows:
        body.append(f"<tr><td colspan='{len(headers)}' class='muted'>nothing recorded yet</td></tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tag(text: str) -> str:
    colour = {"promoted": "#16a34a", "champion": "#16a34a", "refused": "#dc2626", "skipped": "#6b7280",
              "EXCEEDED": "#b45309", "OK": "#16a34a", "PASS": "#16a34a", "FAIL": "#dc2626",
              "rolled_back": "#ea580c"}.get(text, "#4b5563")
    return f"<span class='tag' style='background:{colour}'>{escape(text)}</span>"


def _charts(charts: tuple[Chart, ...], axis: _Axis, marks: tuple[Mark, ...], none: str) -> str:
    if not charts:
        return f"<p class='muted'>{escape(none)}</p>"
    return "".join(f"<h3>{escape(c.title)}</h3>{_chart_svg(c, axis, marks)}" for c in charts)


def render_html(d: Dashboard) -> str:
    """The page (a string): header, shared time axis, drift, quality, events, job runs, lineage."""
    axis = _Axis(d.start, d.end)
    kinds = sorted({m.kind for m in d.marks})
    filters = "".join(f"<label><input type='checkbox' value='{k}' checked> "
                      f"<span style='color:{MARK_COLOURS.get(k, '#333')}'>&#9679;</span> {k}</label>" for k in kinds)
    runs = _table(("gate evaluated (UTC)", "run key", "gate", "summary", "outcome", "detail"), [
        (_fmt(r.at), escape(r.run_key), _tag(r.gate_status), escape(r.summary[:200]), _tag(r.outcome),
         escape(r.detail[:200])) for r in d.job_runs])
    lineage = _table(("version", "aliases", "registered", "outcome", "when", "replaced", "shadow", "shadow metrics",
                      "reason"), [
        (f"v{escape(v.version)}", escape(", ".join(v.aliases)) or "-", _fmt(v.registered_at), _tag(v.outcome),
         _fmt(v.outcome_at), f"v{escape(v.replaced)}" if v.replaced else "-", escape(v.shadow_status or "-"),
         escape(", ".join(f"{k}={_num(val)}" for k, val in v.shadow_metrics)) or "-", escape(v.reason[:200]))
        for v in d.lineage])
    events = _table(("at (UTC)", "kind", "status", "subject", "detail"), [
        (_fmt(m.at), escape(m.kind), _tag(m.status), escape(m.subject), escape(m.text[:240]))
        for m in reversed(d.marks)], [f" data-kind='{escape(m.kind)}'" for m in reversed(d.marks)])
    aliases = ", ".join(f"{escape(a)}=v{escape(v)}" if v else f"{escape(a)}=none" for a, v in d.aliases)
    data = {"model": d.model_name, "job_runs": [{"run_key": r.run_key, "gate": r.gate_status, "outcome": r.outcome}
                                                for r in d.job_runs]}
    payload = json.dumps(data).replace("</", "<\\/")
    as_of = f" · as of {_fmt(d.as_of)} UTC" if d.as_of else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(d.title)}</title>
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<style>{_CSS}</style></head>
<body data-dashboard="loading" data-start="{axis.t0:.0f}" data-end="{axis.t1:.0f}" data-plotw="{axis.width}"
 data-left="{LEFT}">
<header><h1>{escape(d.title)}</h1>
<p>generated {_fmt(d.generated_at)} UTC{as_of} · aliases: {aliases or 'none'}</p></header>
<main>
<section><h2>Events on the time axis</h2><div class="filters">{filters}</div><div id="cursor-time"></div>
{_timeline_svg(d, axis)}</section>
<section id="drift"><h2>What the gate's rules read, with their thresholds</h2>
{_charts(d.drift, axis, d.marks, "no gate rules (the gate is not in rules mode)")}</section>
<section id="quality"><h2>Quality and estimated quality (whole table, all models)</h2>
{_charts(d.quality, axis, d.marks, "no quality columns in the profile table yet")}</section>
<section id="job-runs"><h2>Job runs: gate decision and outcome</h2>{runs}</section>
<section id="lineage"><h2>Champion lineage</h2>{lineage}</section>
<section id="events"><h2>Audit events</h2>{events}</section>
</main>
<script type="application/json" id="dashboard-data">{payload}</script>
<script>{_JS}</script>
</body></html>
"""
