"""`driftgate dashboard`: the pure gathering on hand-made rows, the page's safety, and the page in headless Chromium."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from driftgate.dashboard import DashboardInputs, gather, render_html
from driftgate.dashboard.model import effective_times
from driftgate.gating.testing import day, drift_rows, profile_rows
from driftgate.monitoring.config import MonitorConfig
from driftgate.monitoring.report import ChartPanel

NOW = datetime(2026, 6, 20, tzinfo=timezone.utc)
WALL = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
"""The demo and backtests replay job runs --as-of June days while the clock says November."""

PSI = ChartPanel(rule="psi", table="drift", metric="population_stability_index", op=">", threshold=0.2)
AUC_DROP = ChartPanel(rule="auc_drop", table="profile", metric="roc_auc_score", op="<", threshold=-0.05,
                      relative_to_baseline=True)


def _event(n: int, kind: str, status: str, subject: str, run_key: str | None = None, **details):
    return {"event_id": f"e{n}", "at": WALL + timedelta(seconds=n), "kind": kind, "run_key": run_key,
            "subject": subject, "status": status, "details": details}


def _events() -> list[dict]:
    """A bootstrap, then two replayed job runs: the first promotes v2 over v1, the second refuses v3."""
    m = "main.s.model"
    return [
        _event(0, "train", "registered", f"{m}@1"),
        _event(1, "promotion", "bootstrap", f"{m}@1", reason="first model"),
        _event(2, "gate_decision", "EXCEEDED", "drift", "k1", summary="EXCEEDED: psi"),
        _event(3, "train", "registered", f"{m}@2", "k1"),
        _event(4, "promotion", "challenger_set", f"{m}@2", version="2"),
        _event(5, "shadow", "PASS", f"{m}@2", challenger_roc_auc=0.91, champion_roc_auc=0.85, n_rows=300,
               delta_roc_auc=0.06, ci_low_roc_auc=0.01),
        _event(6, "promotion", "promoted", f"{m}@2", champion="2", previous_champion="1",
               reason="v2 promoted to champion over v1"),
        _event(7, "job_run", "retrain", m, "k1", as_of=day(10).isoformat(), promoted=True,
               promotion_status="promoted", challenger_version="2", shadow_status="PASS", notes=["v2 over v1"]),
        _event(8, "gate_decision", "EXCEEDED", "drift", "k2", summary="EXCEEDED: psi"),
        _event(9, "train", "registered", f"{m}@3", "k2"),
        _event(10, "shadow", "FAIL", f"{m}@3", challenger_roc_auc=0.86, champion_roc_auc=0.86),
        _event(11, "refusal", "refused", f"{m}@3", champion="2", reason="challenger v3 not promoted: FAIL"),
        _event(12, "job_run", "retrain", m, "k2", as_of=day(15).isoformat(), promoted=False,
               promotion_status="refused", challenger_version="3", shadow_status="FAIL", notes=["v3 refused"]),
    ]


def _decisions() -> list[dict]:
    return [{"run_key": k, "evaluated_at": day(d), "status": "EXCEEDED", "summary": "EXCEEDED: psi"}
            for k, d in (("k1", 10), ("k2", 15))]


def _profile(estimates: bool) -> pa.Table:
    table = pa.concat_tables([
        profile_rows(20, extra=lambda d: {"roc_auc_score": 0.9 - 0.01 * d, "accuracy_score": 0.8}),
        profile_rows([0], log_type="BASELINE", extra=lambda d: {"roc_auc_score": 0.9}),
    ])
    if estimates:
        est = [0.88 - 0.005 * i for i in range(table.num_rows)]
        for name, shift in (("estimated_roc_auc", 0.0), ("estimated_roc_auc_lower", -0.03),
                            ("estimated_roc_auc_upper", 0.03)):
            column = pa.array([v + shift for v in est], pa.float64())
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, column)
            else:
                table = table.append_column(name, column)
    return table


def _inputs(estimates: bool = False, **changes) -> DashboardInputs:
    base = dict(
        model_name="main.s.model", monitor=MonitorConfig(table_name="main.s.log", output_schema_name="main.s"),
        panels=(PSI, AUC_DROP),
        drift=drift_rows(20, ["age", "plan"], lambda d, c: 0.05 if d < 8 else 0.4),
        profile=_profile(estimates), decisions=tuple(_decisions()), events=tuple(_events()),
        aliases={"champion": "2", "previous_champion": "1", "challenger": "3"}, granularity="1 day")
    return DashboardInputs(**{**base, **changes})


def test_drift_panels_carry_each_rules_series_and_threshold():
    d = gather(_inputs(), generated_at=NOW)
    psi, auc = d.drift
    assert [line.label for line in psi.lines] == ["age", "plan"]
    assert psi.threshold == 0.2 and len(psi.lines[0].points) == 20
    assert psi.lines[0].points[9][1] == pytest.approx(0.4)
    # relative to the baseline: the line is baseline + threshold, and the baseline is shown
    assert auc.baseline == pytest.approx(0.9) and auc.threshold == pytest.approx(0.85)


def test_quality_draws_the_estimate_and_its_band_only_when_the_columns_exist():
    without = gather(_inputs(estimates=False), generated_at=NOW)
    auc = next(c for c in without.quality if c.metric == "roc_auc_score")
    assert [line.label for line in auc.lines] == ["realised"] and auc.band == ()
    assert auc.threshold == pytest.approx(0.85)  # the gate's rule on that metric lends its line

    with_est = gather(_inputs(estimates=True), generated_at=NOW)
    auc = next(c for c in with_est.quality if c.metric == "roc_auc_score")
    assert [line.label for line in auc.lines] == ["realised", "estimated"]
    assert len(auc.band) == 20 and all(lo < hi for _, lo, hi in auc.band)
    # accuracy has no estimated column here: drawn without one
    acc = next(c for c in with_est.quality if c.metric == "accuracy_score")
    assert [line.label for line in acc.lines] == ["realised"]


def test_replayed_runs_put_their_events_at_the_runs_as_of_time():
    when = effective_times(_events(), _decisions())
    assert when["e5"] == day(10) and when["e6"] == day(10)  # shadow and promotion of run k1
    assert when["e11"] == day(15)  # the refusal of run k2
    assert when["e1"] == day(10)  # the bootstrap, written before run k1, is not placed after it
    # an event outside any replayed run stays at the clock
    assert effective_times([_event(20, "rollback", "rolled_back", "m@2")], [])["e20"] == WALL + timedelta(seconds=20)


def test_job_runs_and_lineage_tell_who_replaced_whom():
    d = gather(_inputs(), generated_at=NOW)
    assert [(r.run_key, r.gate_status, r.outcome) for r in d.job_runs] == [
        ("k1", "EXCEEDED", "promoted"), ("k2", "EXCEEDED", "refused")]
    lineage = {v.version: v for v in d.lineage}
    assert [v.version for v in d.lineage] == ["1", "2", "3"]
    assert lineage["1"].outcome == "champion" and lineage["1"].aliases == ("previous_champion",)
    assert lineage["2"].outcome == "promoted" and lineage["2"].replaced == "1"
    assert lineage["2"].outcome_at == day(10) and lineage["2"].shadow_status == "PASS"
    assert dict(lineage["2"].shadow_metrics) == {"challenger_roc_auc": 0.91, "champion_roc_auc": 0.85}
    assert lineage["3"].outcome == "refused" and "not promoted" in lineage["3"].reason
    assert lineage["3"].replaced is None


def test_version_tags_stand_in_when_a_shadow_event_is_missing():
    events = tuple(e for e in _events() if e["kind"] != "shadow")
    d = gather(_inputs(events=events, version_tags={"3": {"driftgate_challenger_roc_auc": "0.5",
                                                          "driftgate_shadow_status": "FAIL"}}), generated_at=NOW)
    v3 = next(v for v in d.lineage if v.version == "3")
    assert v3.shadow_status == "FAIL" and dict(v3.shadow_metrics) == {"challenger_roc_auc": 0.5}


def test_as_of_leaves_out_later_windows_runs_and_events():
    d = gather(_inputs(), generated_at=NOW, as_of=day(12))
    assert [r.run_key for r in d.job_runs] == ["k1"]
    assert all(m.at <= day(12) for m in d.marks) and not any(m.kind == "refusal" for m in d.marks)
    assert max(p[0] for p in d.drift[0].lines[0].points) == day(12)
    assert next(v for v in d.lineage if v.version == "3").outcome == "registered"


def test_nothing_recorded_yet_still_renders():
    d = gather(_inputs(drift=None, profile=None, decisions=(), events=(), aliases={}), generated_at=NOW)
    assert d.start is None and d.job_runs == () and d.quality == ()
    assert all(c.empty for c in d.drift)
    assert "nothing recorded yet" in render_html(d)


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    events = (*_events(), _event(30, "rollback", "rolled_back", "<script>alert(1)</script>@2",
                                 reason="</script><img src=x onerror=alert(1)>"))
    page = render_html(gather(_inputs(estimates=True, events=events), generated_at=NOW))
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # no fetch of anything: no src/href to a URL, no @import, a CSP that forbids network loads
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", page)
    assert "@import" not in page and "default-src 'none'" in page
    assert page.count("<script") == 2  # the JSON data block and the inline script
    assert page.count("class='band'") == 1 and "estimated" in page


# -- in a real browser ---------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with no network side channels (updates, sync, component downloads)."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)")
def test_the_demo_worlds_page_runs_its_script_in_chromium_and_shows_both_job_runs(tmp_path):
    from driftgate.core.settings import load_settings
    from driftgate.dashboard import write_dashboard
    from driftgate.pipeline import run_demo
    from driftgate.workspace import open_workspace
    from tests.conftest import REPO
    from tests.test_end_to_end import SMALL

    settings = load_settings(REPO / "conf", "demo", (*SMALL, f"workspace.root={tmp_path / '.driftgate'}"))
    ws = open_workspace(settings)
    summary = run_demo(ws, say=lambda _: None, today=datetime(2026, 9, 1, tzinfo=timezone.utc))
    assert sorted(run.promoted for run in summary.runs) == [False, True]  # one promotion, one refusal

    page = tmp_path / "dashboard.html"
    record = write_dashboard(ws, page)
    assert [r.outcome for r in record.job_runs] == ["promoted" if r.promoted else "refused" for r in summary.runs]

    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # the script sets the marker last: it ran through without throwing
    assert re.search(r"<body[^>]*data-dashboard=\"ready\"", dom), dom[:500]
    assert not re.search(r"Uncaught|SyntaxError|TypeError|ReferenceError", done.stderr), done.stderr[-2000:]
    section = dom[dom.index('id="job-runs"'):dom.index('id="lineage"')]
    for run in summary.runs:
        row = section[section.index(run.run_key):]
        row = row[:row.index("</tr>")]
        assert str(run.decision.status) in row
        assert ("promoted" if run.promoted else "refused") in row
    assert dom.count("<polyline") >= len(ws.settings.gate.effective_rules())


def test_the_command_writes_the_page_with_conf_env_and_set_and_refuses_a_bad_as_of(ws, tmp_path):
    from typer.testing import CliRunner

    from driftgate.cli import app

    drift = ws.settings.monitor.drift_metrics_table
    columns = ["age", "monthly_charges"]
    ws.tables.write(drift, drift_rows(12, columns, lambda d, c: 0.05 if d < 6 else 0.5), mode="append")
    out = tmp_path / "out" / "page.html"
    args = ["dashboard", "--env", "demo", "--set", f"workspace.root={ws.settings.workspace.root}", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "0 job runs" in res.output
    page = out.read_text()
    for rule in ws.settings.gate.effective_rules():
        assert escape_title(rule.name) in page
    assert "monthly_charges" in page and "nothing recorded yet" in page

    res = CliRunner().invoke(app, [*args, "--as-of", day(3).isoformat()])
    assert res.exit_code == 0, res.output
    assert "as of 2026-06-04 00:00 UTC" in out.read_text()
    res = CliRunner().invoke(app, [*args, "--as-of", "last tuesday"])
    assert res.exit_code == 1 and "--as-of" in res.output


def escape_title(text: str) -> str:
    from html import escape

    return escape(text)
