"""driftgate backtest: per-window records are consistent, the user's workspace is only read,
one MLflow run per rule set; rule-set parsing and the totals (pure)."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from driftgate.backtest import NEVER, RuleSet, WindowRecord, parse_rule_set, summarise
from driftgate.core.errors import ConfigError

T0 = datetime(2026, 1, 15, tzinfo=timezone.utc)


def _rec(policy, i, **kw):
    start = T0 + timedelta(days=i)
    base = dict(policy=policy, window=i, start=start.isoformat(), end=(start + timedelta(days=1)).isoformat(),
                as_of=(start + timedelta(days=1)).isoformat(), served_version="1", rows=100, labelled_rows=100,
                roc_auc=0.8, accuracy=0.7)
    return WindowRecord(**{**base, **kw})


def test_summary_counts_delays_and_quality_against_never():
    recs = [_rec(NEVER, i, roc_auc=0.7) for i in range(4)]
    recs += [_rec("a", 0, fired=True, retrained=True), _rec("a", 1, fired=True, cooldown_skip=True),
             _rec("a", 2, fired=True, retrained=True, promoted=True, shadow_status="PASS"),
             _rec("a", 3, roc_auc=0.9)]
    (never, a) = summarise(recs, {NEVER: "never", "a": "rules"}, {"a": 2.0}, change_at=T0 + timedelta(hours=12))
    assert (a.gate_firings, a.cooldown_skips, a.retrains, a.promotions) == (3, 1, 2, 1)
    assert a.detection_delay_days == pytest.approx(0.5)       # fired at the end of window 0
    assert a.promotion_delay_days == pytest.approx(2.5)
    assert a.rows_to_promotion == 300                         # windows 0..2 end after the change
    assert a.roc_auc_vs_never == pytest.approx((0.1 * 3 + 0.2) / 4)
    assert a.setup_seconds == 2.0 and never.promotions == 0 and never.detection_delay_days is None


def test_rule_sets_from_files_and_overrides(tmp_path):
    path = tmp_path / "strict.yml"
    path.write_text("gate:\n  retrain_cooldown: 5 days\n  rules:\n"
                    "    - name: numeric_drift_psi\n      threshold: 0.1\n")
    strict = parse_rule_set(str(path))
    assert strict.name == "strict" and strict.overrides[0].startswith("gate=")
    inline = parse_rule_set("loose:gate.rules.numeric_drift_psi.threshold=0.4;gate.retrain_cooldown=null")
    assert inline.name == "loose" and inline.values == {"gate.rules.numeric_drift_psi.threshold": 0.4,
                                                        "gate.retrain_cooldown": None}
    assert parse_rule_set("gate.combine=all").name == "combine"
    for bad in ("workspace.root=/elsewhere", "x:project.inference_table=a.b.c", "nothing", str(tmp_path / "no.yml")):
        with pytest.raises(ConfigError):
            parse_rule_set(bad)


# --------------------------------------------------------------------------- a real replay (small world)

DAYS = 3


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    from driftgate.backtest import run_backtest
    from tests.backtest_world import build_served_world

    base = tmp_path_factory.mktemp("backtest")
    load, start, user = build_served_world(base / "user" / ".driftgate", DAYS)
    before = _snapshot(user)
    result = run_backtest(
        load, start=start, end=start + timedelta(days=DAYS),
        rule_sets=[RuleSet("configured", (), "conf"),
                   parse_rule_set("always:gate.mode=always;gate.retrain_cooldown=2 days")],
        every_days=2, change_at=start, output=base / "out", experiment="/Shared/backtests")
    return result, user, before


def _snapshot(ws):
    from mlflow import MlflowClient

    from driftgate.workspace.audit import read_events

    lake = ws.root / "lakehouse"
    tables = sorted(str(p.parent.relative_to(lake)) for p in lake.rglob("_delta_log"))
    name = ws.settings.project.model_name
    client = MlflowClient(ws.tracking_uri, ws.registry_uri)
    return {"tables": {t: ws.tables.version(t.replace("/", ".")) for t in tables},
            "versions": sorted(v.version for v in client.search_model_versions(f"name='{name}'")),
            "champion": ws.registry.alias_version(name, "champion"),
            "events": len(read_events(ws, None, limit=10_000))}


def test_records_are_consistent(replayed):
    result, _, _ = replayed
    by = {}
    for r in result.windows:
        by.setdefault(r.policy, []).append(r)
    assert set(by) == {NEVER, "configured", "always", "every_2d"}
    assert all(len(v) == DAYS for v in by.values())
    for r in result.windows:
        assert not r.promoted or r.shadow_status == "PASS", r
        assert r.retrained == (r.fired and not r.cooldown_skip), r
    for summary in result.summaries:
        assert summary.retrains == summary.gate_firings - summary.cooldown_skips
    always = by["always"]
    assert [r.fired for r in always] == [True] * DAYS and [r.cooldown_skip for r in always] == [False, True, False]
    assert not any(r.promoted or r.retrained or r.gate_status for r in by[NEVER])
    assert [r.retrained for r in by["every_2d"]] == [False, True, False]
    assert any(r.promoted for r in result.windows)   # the drift is strong: some challenger passes
    for recs in by.values():                            # a promotion serves from the next window on
        for before, after in zip(recs, recs[1:]):
            assert after.served_version == before.champion_after
    # each policy serves with its own champion, the never baseline with the first one
    assert all(r.served_version == by[NEVER][0].served_version for r in by[NEVER])
    first = [r for r in result.windows if r.window == 0]
    assert len({(r.roc_auc, r.rows) for r in first}) == 1   # same rows, same first champion
    assert not math.isnan(first[0].roc_auc)
    assert all(p.exists() for p in result.files.values())


def test_user_workspace_is_only_read_and_gets_one_run_per_rule_set(replayed):
    from mlflow import MlflowClient

    result, user, before = replayed
    assert _snapshot(user) == before
    client = MlflowClient(user.tracking_uri)
    exp = client.get_experiment_by_name("/Shared/backtests")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["driftgate.backtest.rule_set"] for r in runs) == ["always", "configured"]
    always = next(r for r in runs if r.data.tags["driftgate.backtest.rule_set"] == "always")
    assert always.data.params["rules.gate.mode"] == "always"
    assert always.data.metrics["cooldown_skips"] == 1 and "never.mean_roc_auc" in always.data.metrics
    assert "every.retrains" in always.data.metrics
    names = {a.path for a in client.list_artifacts(always.info.run_id, "backtest")}
    assert {"backtest/windows.csv", "backtest/summary.csv", "backtest/backtest.png"} <= names
    assert set(result.run_ids) == {"always", "configured"}


@pytest.mark.slow
def test_cli_backtest_two_rule_sets_side_by_side(tmp_path):
    """The command end to end: two rule sets and both baselines in one table, files written."""
    import json

    from typer.testing import CliRunner

    from driftgate.cli import app
    from tests.backtest_world import TINY, build_served_world
    from tests.conftest import REPO

    root = tmp_path / "user" / ".driftgate"
    _, start, _ = build_served_world(root, 2)
    (tmp_path / "strict.yml").write_text("gate:\n  mode: always\n")
    args = ["backtest", "--conf", str(REPO / "conf"), "--env", "demo",
            *[a for s in (*TINY, f"workspace.root={root}") for a in ("--set", s)],
            "--from", start.isoformat(), "--to", (start + timedelta(days=2)).isoformat(),
            "--rules", str(tmp_path / "strict.yml"), "--rules", "loose:gate.mode=never",
            "--every", "1", "--output", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("backtest 20"):]
    assert all(name in table for name in ("never", "strict", "loose", "every_1d", "ΔAUC never", "train s"))
    summary = json.loads((tmp_path / "out" / "backtest.json").read_text())["summary"]
    rows = {r["policy"]: r for r in summary}
    assert set(rows) == {"never", "strict", "loose", "every_1d"}
    assert rows["strict"]["gate_firings"] == 2 and rows["loose"]["gate_firings"] == 0
    assert rows["every_1d"]["retrains"] == 2
    assert (tmp_path / "out" / "backtest.png").stat().st_size > 0
