"""Fault injection: SIGKILL at every named step boundary, then a fresh process recovers.

Each case copies a small world built once per module, runs the operation in a real child
process with ``DRIFTGATE_FAULT=<point>`` (:mod:`driftgate.core.faults`), which kills itself
with SIGKILL there, then recovers in this process (``promotion.recover`` / the next refresh)
and checks: the aliases end where an uninterrupted run puts them and satisfy the alias
invariant, the metric tables equal an uninterrupted run's row for row, and the audit trail
holds exactly one event for the outcome. The children fork from a pre-warmed driver
(``tests/fault_driver.py``) so a case costs a fork, not an interpreter start. For every path
an uninterrupted run traces the points it passes (``DRIFTGATE_FAULT_TRACE``): the lists below
must name all of them, so a new step boundary cannot go untested.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

import monitor_world as mw
from driftgate.core.faults import ENV, TRACE_ENV
from fault_driver import open_ws

HERE = Path(__file__).resolve().parent
METRICS = {"challenger_roc_auc": 0.8, "champion_roc_auc": 0.7}
NONE = {"champion": None, "previous_champion": None, "challenger": None}


def _tags(op: str, n: int) -> list[str]:
    return [f"{op}.tag#{i}" for i in range(1, n + 1)]


# promote over a champion: 6 tags on the new champion (decision, time, replaced version, shadow and
# training run ids, challenger_roc_auc) and 5 on the old one (decision, by, time, shadow run, champion_roc_auc)
PROMOTE = ["promote.intent", "promote.alias.previous_champion", "promote.alias.champion",
           "promote.alias.challenger", *_tags("promote", 11), "promote.event", "promote.closed"]
FIRST = ["promote.intent", "promote.alias.champion", "promote.alias.challenger", *_tags("promote", 6),
         "promote.event", "promote.closed"]
ROLLBACK = ["rollback.intent", "rollback.alias.champion", "rollback.alias.previous_champion",
            *_tags("rollback", 4), "rollback.event", "rollback.closed"]
# a registry error on the first tag: the process reverts the aliases itself, and dies doing it
REVERT = ["promote.revert", "promote.restore.champion", "promote.restore.previous_champion",
          "promote.restore.challenger", "promote.event", "promote.closed"]
MONITOR = ["monitor.drift_written", "monitor.profile_written", "monitor.compacted", "monitor.summaries_saved"]

PROMOTION_PATHS = {
    # name: (template, op, points to kill at, every point an uninterrupted run passes, aliases after, event)
    "promote": ("promote", "promote", PROMOTE, PROMOTE,
                {"champion": "2", "previous_champion": "1", "challenger": None}, ("promotion", "promoted")),
    "first": ("first", "promote", FIRST, FIRST, {**NONE, "champion": "1"}, ("promotion", "promoted")),
    "rollback": ("rollback", "rollback", ROLLBACK, ROLLBACK,
                 {"champion": "1", "previous_champion": None, "challenger": "3"}, ("rollback", "rolled_back")),
    "revert": ("promote", "promote_failing_tags", REVERT, PROMOTE[:4] + REVERT,
               {"champion": "1", "previous_champion": "3", "challenger": "2"}, ("refusal", "refused")),
}
TEMPLATES = {"promote": {"champion": "1", "challenger": "2", "previous_champion": "3"},
             "first": {"challenger": "1"},
             "rollback": {"champion": "2", "previous_champion": "1", "challenger": "3"}}
MONITOR_PATHS = ("full", "append", "late")
OUTCOME_KINDS = ["promotion", "refusal", "rollback"]


# --------------------------------------------------------------------------- the driver


class Driver:
    """The pre-warmed parent process; :meth:`run` forks one child per case."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
        env.pop(ENV, None)
        self.proc = subprocess.Popen([sys.executable, str(HERE / "fault_driver.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, op: str, root: Path, fault: str = "", trace: Path | None = None, **args) -> dict:
        case = {"op": op, "root": str(root), "fault": fault, "trace": str(trace) if trace else None,
                "metrics": METRICS, "reason": "conversion dropped", **args}
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def kill_at(self, op: str, root: Path, point: str) -> None:
        answer = self.run(op, root, point)
        log = (root / "child.log").read_text() if (root / "child.log").exists() else ""
        assert answer["signal"] == signal.SIGKILL, f"{op} was not killed at {point}: {answer}\n{log}"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def driver():
    d = Driver()
    yield d
    d.close()


def _copy(template: Path, tmp_path: Path, name: str = "ws") -> Path:
    root = tmp_path / name
    shutil.copytree(template, root)
    for leftover in ("child.log", "result.json"):
        (root / leftover).unlink(missing_ok=True)
    return root


def _traced(driver: Driver, op: str, root: Path) -> list[str]:
    """Run ``op`` uninterrupted and return the points it passed (a point passed once: its bare name)."""
    trace = root / "trace.txt"
    answer = driver.run(op, root, trace=trace)
    assert answer["code"] == 0, (root / "child.log").read_text()
    passed = [line.rsplit("#", 1)[0] for line in trace.read_text().split()]
    counts = Counter(passed)
    seen: Counter[str] = Counter()
    out = []
    for name in passed:
        seen[name] += 1
        out.append(name if counts[name] == 1 else f"{name}#{seen[name]}")
    return out


# --------------------------------------------------------------------------- promotion world


@pytest.fixture(scope="module")
def promotion_templates(tmp_path_factory):
    """Three registered versions in a local MLflow registry, with the aliases of each path."""
    base = tmp_path_factory.mktemp("promotion") / "base"
    ws = open_ws(base)
    name = ws.settings.project.model_name
    for i in range(3):
        ws.registry.register(f"file://{base}/model{i}", name)
    out = {}
    for key, setup in TEMPLATES.items():
        root = base.parent / key
        shutil.copytree(base, root)
        tws = open_ws(root)
        for alias, version in setup.items():
            tws.registry.set_alias(name, alias, version)
        out[key] = root
    return out


@pytest.fixture(scope="module")
def uninterrupted(driver, promotion_templates, tmp_path_factory):
    """Per path: the points an uninterrupted run passes, and the version tags it leaves."""
    out = {}
    for path, (template, op, _, _, _, _) in PROMOTION_PATHS.items():
        root = _copy(promotion_templates[template], tmp_path_factory.mktemp(f"ref-{path}"))
        points = _traced(driver, op, root)
        out[path] = points, _version_tags(open_ws(root))
    return out


def _version_tags(ws) -> dict[str, dict[str, str]]:
    """driftgate tags of every version, without the timestamps (a recovered move keeps its own)."""
    name = ws.settings.project.model_name
    return {v: {k: t for k, t in ws.registry.get_version(name, v).tags.items()
                if k.startswith("driftgate_") and not k.endswith("_at")} for v in ("1", "2", "3")}


def _outcome_events(ws) -> list[dict]:
    from driftgate.workspace.audit import read_events

    return read_events(ws, OUTCOME_KINDS, limit=1000)


def _check_promotion_state(ws, path: str, expected_tags: dict) -> None:
    from driftgate.promotion import aliases, check_alias_invariant, recover
    from driftgate.promotion.intent import intents_table, open_intents

    *_, after, (kind, status) = PROMOTION_PATHS[path]
    name = ws.settings.project.model_name
    now = aliases(ws)
    assert now == after
    assert check_alias_invariant(now, promoted=path != "revert") == []
    assert open_intents(ws, name) == []
    events = _outcome_events(ws)
    assert [(e["kind"], e["status"]) for e in events] == [(kind, status)], events
    intent_ids = set(ws.tables.read(intents_table(ws), columns=["intent_id"]).column("intent_id").to_pylist())
    assert intent_ids == {events[0]["event_id"]}  # one intent, and the event is its outcome
    assert _version_tags(ws) == expected_tags
    assert recover(ws) is None  # nothing left to do: a second recovery changes nothing


@pytest.mark.parametrize("path", list(PROMOTION_PATHS))
def test_every_step_boundary_of_the_path_is_enumerated(uninterrupted, path):
    assert uninterrupted[path][0] == PROMOTION_PATHS[path][3]


@pytest.mark.parametrize("path, point", [(p, pt) for p, spec in PROMOTION_PATHS.items() for pt in spec[2]])
def test_killed_promotion_is_finished_exactly_once_by_the_next_process(driver, promotion_templates, uninterrupted,
                                                                       tmp_path, path, point):
    from driftgate.promotion import recover

    template, op, *_ = PROMOTION_PATHS[path]
    root = _copy(promotion_templates[template], tmp_path)
    driver.kill_at(op, root, point)
    ws = open_ws(root)
    result = recover(ws)
    if point.endswith(".closed"):
        assert result is None  # the outcome was recorded and the intent closed before the kill
    else:
        expected = "closed" if point.endswith(".event") else "reverted" if path == "revert" else "completed"
        assert result is not None and result.outcome == expected and result.violations == ()
    _check_promotion_state(ws, path, uninterrupted[path][1])


def test_a_recovery_killed_halfway_is_finished_by_the_next_one(driver, promotion_templates, uninterrupted, tmp_path):
    from driftgate.promotion import recover

    root = _copy(promotion_templates["promote"], tmp_path)
    driver.kill_at("promote", root, "promote.alias.previous_champion")
    driver.kill_at("recover", root, "promote.tag#5")
    assert recover(open_ws(root)).outcome == "completed"
    _check_promotion_state(open_ws(root), "promote", uninterrupted["promote"][1])


def test_an_alias_moved_by_hand_after_the_crash_is_left_alone(driver, promotion_templates, tmp_path):
    from driftgate.promotion import aliases, recover

    root = _copy(promotion_templates["promote"], tmp_path)
    driver.kill_at("promote", root, "promote.alias.champion")
    ws = open_ws(root)
    name = ws.settings.project.model_name
    ws.registry.set_alias(name, "challenger", "3")  # an operator, before anything recovered
    result = recover(ws)
    assert result.outcome == "abandoned" and "challenger reads 3" in result.message
    assert aliases(ws) == {"champion": "2", "previous_champion": "1", "challenger": "3"}
    assert [(e["kind"], e["status"]) for e in _outcome_events(ws)] == [("refusal", "error")]
    assert recover(ws) is None


def test_promote_and_status_commands_recover_first(driver, promotion_templates, tmp_path):
    """The real CLI: a later ``promote`` refuses nothing it should not, and ``status`` recovers and checks."""
    root = _copy(promotion_templates["rollback"], tmp_path)
    driver.kill_at("rollback", root, "rollback.alias.champion")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop(ENV, None)
    cli = [sys.executable, "-m", "driftgate.cli", "status", "--json", "--set", f"workspace.root={root}"]

    def status_json() -> dict:
        proc = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=HERE.parent, timeout=300)
        # deltalake's Rust runtime can abort a short-lived process at interpreter exit, after all
        # its work (delta-io/delta-rs#2184): the JSON is then complete, and the state is checked below
        assert proc.returncode == 0 or (proc.returncode == -signal.SIGABRT and proc.stdout.rstrip().endswith("}")), \
            proc.stderr[-3000:]
        return json.loads(proc.stdout)

    status = status_json()
    assert status["recovery"]["outcome"] == "completed" and status["recovery"]["op"] == "rollback"
    assert status["invariant"] == []
    assert {r["alias"]: r["version"] for r in status["aliases"]} == PROMOTION_PATHS["rollback"][4]
    again = status_json()
    assert again["recovery"] is None and [e["status"] for e in again["promotion"]] == ["rolled_back"]


# --------------------------------------------------------------------------- monitor world


def _monitor_template(root: Path, path: str) -> Path:
    """Four days (one commit each) and a baseline; then per path what the refresh under test finds."""
    from driftgate import monitoring

    ws = mw.light_workspace(root)
    for day in range(4):
        ws.tables.write(mw.LOG, mw.frame(1, first_day=day, rows_per_day=60))
    ws.tables.write(mw.BASELINE, mw.frame(2, rows_per_day=60, seed=9, start=mw.START - timedelta(days=5)))
    if path == "full":
        return root
    monitoring.refresh(ws, ws.settings.monitor)
    if path == "append":  # the daily case: a new day, appended to both metric tables
        ws.tables.write(mw.LOG, mw.frame(1, first_day=4, rows_per_day=60))
    else:  # late rows for day 2: its windows are replaced
        ws.tables.write(mw.LOG, mw.frame(1, first_day=2, rows_per_day=5, seed=42))
    return root


def _rows(ws, name: str) -> list[str]:
    if not ws.tables.exists(name):
        return []
    return sorted(repr(sorted(r.items())) for r in ws.tables.read(name).to_pylist())


def _monitor_state(root: Path) -> tuple[list[str], list[str], int]:
    from driftgate.workspace.audit import read_events

    ws = mw.light_workspace(root)
    cfg = ws.settings.monitor
    return (_rows(ws, cfg.profile_metrics_table), _rows(ws, cfg.drift_metrics_table),
            len(read_events(ws, ["monitor_refresh"], limit=1000)))


@pytest.fixture(scope="module")
def monitor_worlds(driver, tmp_path_factory):
    """Per path: the template, and what an uninterrupted refresh of it leaves (run in a child too)."""
    out = {}
    for path in MONITOR_PATHS:
        template = _monitor_template(tmp_path_factory.mktemp(f"monitor-{path}") / "template", path)
        ref = _copy(template, tmp_path_factory.mktemp(f"monitor-ref-{path}"))
        points = _traced(driver, "refresh", ref)
        out[path] = template, points, _monitor_state(ref), _monitor_state(template)[2]
    return out


@pytest.mark.parametrize("path", MONITOR_PATHS)
def test_every_step_boundary_of_the_refresh_is_enumerated(monitor_worlds, path):
    assert monitor_worlds[path][1] == MONITOR


@pytest.mark.parametrize("path, point", [(p, pt) for p in MONITOR_PATHS for pt in MONITOR])
def test_killed_refresh_then_rerun_equals_an_uninterrupted_refresh(driver, monitor_worlds, tmp_path, path, point):
    from driftgate import monitoring

    template, _, (profile, drift, events), events_before = monitor_worlds[path]
    root = _copy(template, tmp_path)
    driver.kill_at("refresh", root, point)
    ws = mw.light_workspace(root)
    rerun = monitoring.refresh(ws, ws.settings.monitor)
    assert rerun.noop == (point != "monitor.drift_written")  # once the profile table is written, it is done
    assert monitoring.refresh(ws, ws.settings.monitor).noop
    got_profile, got_drift, got_events = _monitor_state(root)
    assert len(got_drift) == len(drift) and got_drift == drift  # no window written twice
    assert got_profile == profile
    assert got_events == events == events_before + 1  # one monitor_refresh event for the refresh


# --------------------------------------------------------------------------- the helper itself


def _run_point(env_value: str, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, ENV: env_value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_fault_point_kills_only_when_named_and_on_the_named_pass():
    code = ("from driftgate.core.faults import fault_point\n"
            "for i in range(3):\n    print(i, flush=True)\n    fault_point('demo.step')\n"
            "fault_point('demo.other')\nprint('end', flush=True)")
    assert _run_point("", code).stdout.split() == ["0", "1", "2", "end"]
    killed = _run_point("demo.step", code)
    assert killed.returncode == -signal.SIGKILL and killed.stdout.split() == ["0"]
    second = _run_point("x, demo.step#2", code)
    assert second.returncode == -signal.SIGKILL and second.stdout.split() == ["0", "1"]
    other = _run_point("demo.other", code)
    assert other.returncode == -signal.SIGKILL and other.stdout.split() == ["0", "1", "2"]
