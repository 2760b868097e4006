"""Fault injection: whatever step of a promotion or rollback fails, the aliases end exactly as before."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from driftgate.core.errors import PromotionRefused, RegistryError
from driftgate.promotion import PromotionResult, ShadowResult, promote, rollback
from driftgate.promotion.moves import aliases
from driftgate.workspace import FakeRegistry

NAME = "main.driftgate_demo.churn_model"


class FaultyRegistry:
    """Wraps a registry; the ``fail_at``-th mutating (or reading) call raises ``error``, once."""

    def __init__(self, inner, *, fail_at: int | None = None, error: BaseException | None = None,
                 reads: bool = False):
        self.inner, self.fail_at, self.error, self.reads = inner, fail_at, error, reads
        self.count = 0
        self.log: list[tuple] = []

    def _maybe_fail(self, call: tuple) -> None:
        self.count += 1
        self.log.append(call)
        if self.fail_at is not None and self.count == self.fail_at:
            self.fail_at = None
            raise self.error

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def set_alias(self, name, alias, version):
        self._maybe_fail(("set_alias", alias, version))
        return self.inner.set_alias(name, alias, version)

    def delete_alias(self, name, alias):
        self._maybe_fail(("delete_alias", alias))
        return self.inner.delete_alias(name, alias)

    def set_tag(self, name, version, key, value):
        self._maybe_fail(("set_tag", version, key))
        return self.inner.set_tag(name, version, key, value)


@pytest.fixture
def ws(settings, tmp_path):
    """Tables for the audit trail and a fake registry: no MLflow database to create per test."""
    from driftgate.workspace import DeltaTableStore, LocalTaskValues, Workspace

    return Workspace(settings=settings, tables=DeltaTableStore(tmp_path / "lakehouse"), registry=FakeRegistry(),
                     task_values=LocalTaskValues(tmp_path, "t", "promote"), tracking_uri="", registry_uri="",
                     root=tmp_path)


def _fake(n: int = 3) -> FakeRegistry:
    reg = FakeRegistry()
    for i in range(n):
        reg.register(f"runs:/r{i}/model", NAME)
    return reg


def _passed(champion: str | None, challenger: str) -> ShadowResult:
    return ShadowResult(status="PASS", model_name=NAME, champion_version=champion, challenger_version=challenger,
                        metrics={"challenger_roc_auc": 0.8, "champion_roc_auc": 0.7, "delta_roc_auc": 0.1},
                        reasons=("criteria met",), run_id="run123")


def _ws(ws, registry):
    return dataclasses.replace(ws, registry=registry)


def _mutations(ws, reg) -> int:
    """How many mutating registry calls a successful promotion of v2 over v1 makes."""
    probe = FaultyRegistry(_fake())
    probe.inner.set_alias(NAME, "champion", "1")
    probe.inner.set_alias(NAME, "challenger", "2")
    assert promote(_ws(ws, probe), _passed("1", "2")).promoted
    return probe.count


ERRORS = [RegistryError("injected registry failure", model=NAME), TimeoutError("injected timeout"),
          RuntimeError("injected crash")]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_promotion_fault_at_every_step_leaves_aliases_as_before(ws, error):
    total = _mutations(ws, None)
    assert total >= 5  # previous, champion, challenger removal, and tags on both versions
    for step in range(1, total + 1):
        inner = _fake()
        inner.set_alias(NAME, "champion", "1")
        inner.set_alias(NAME, "challenger", "2")
        inner.set_alias(NAME, "previous_champion", "3")
        before = dict(inner.aliases[NAME])
        faulty = FaultyRegistry(inner, fail_at=step, error=error)
        with pytest.raises(PromotionRefused, match="aliases restored"):
            promote(_ws(ws, faulty), _passed("1", "2"))
        assert inner.aliases[NAME] == before, f"fault at step {step} ({faulty.log[step - 1]}) left {inner.aliases}"
        assert inner.versions[NAME]["2"].tags.get("driftgate_decision") != "promoted"


def test_a_crash_mid_promotion_restores_the_aliases_and_stays_a_crash(ws):
    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    before = dict(inner.aliases[NAME])
    faulty = FaultyRegistry(inner, fail_at=3, error=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        promote(_ws(ws, faulty), _passed("1", "2"))
    assert inner.aliases[NAME] == before


def test_restore_failure_is_an_error_naming_the_aliases_to_fix(ws):
    class Broken(FaultyRegistry):
        def set_alias(self, name, alias, version):
            if alias == "champion":
                self.inner.set_alias(name, alias, version)
                raise RegistryError("registry went away", model=name)
            return super().set_alias(name, alias, version)

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    with pytest.raises(RegistryError, match="Fix them by hand"):
        promote(_ws(ws, Broken(inner)), _passed("1", "2"))


def test_successful_promotion_moves_all_three_aliases_and_tags_both_versions(ws):
    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    result = promote(_ws(ws, inner), _passed("1", "2"))
    assert result.promoted and result.champion_version == "2" and result.previous_champion == "1"
    assert inner.aliases[NAME] == {"champion": "2", "previous_champion": "1"}
    new, old = inner.versions[NAME]["2"].tags, inner.versions[NAME]["1"].tags
    assert new["driftgate_decision"] == "promoted" and new["driftgate_shadow_run_id"] == "run123"
    assert new["driftgate_challenger_roc_auc"] == "0.8000" and new["driftgate_replaced_version"] == "1"
    assert old["driftgate_decision"] == "replaced" and old["driftgate_replaced_by"] == "2"
    assert old["driftgate_champion_roc_auc"] == "0.7000" and old["driftgate_shadow_run_id"] == "run123"


def test_first_champion_when_there_is_none(ws):
    inner = _fake()
    inner.set_alias(NAME, "challenger", "1")
    result = promote(_ws(ws, inner), _passed(None, "1"))
    assert result.promoted and "first champion" in result.reason
    assert inner.aliases[NAME] == {"champion": "1"}


@pytest.mark.parametrize("setup, message", [
    ({"champion": "3", "challenger": "2"}, "champion is now 3"),          # moved by hand meanwhile
    ({"champion": "1", "challenger": "3"}, "challenger alias points at 3"),
    ({"challenger": "2"}, "champion is now unset"),
])
def test_refuses_when_aliases_moved_since_the_shadow_evaluation(ws, setup, message):
    inner = _fake()
    for alias, version in setup.items():
        inner.set_alias(NAME, alias, version)
    before = dict(inner.aliases[NAME])
    result = promote(_ws(ws, inner), _passed("1", "2"))
    assert not result.promoted and result.status == "refused" and message in result.reason
    assert inner.aliases[NAME] == before


def test_refuses_a_deleted_version(ws):
    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    del inner.versions[NAME]["2"]
    result = promote(_ws(ws, inner), _passed("1", "2"))
    assert not result.promoted and "no longer exists" in result.reason
    assert inner.aliases[NAME]["champion"] == "1"


@pytest.mark.parametrize("status", ["FAIL", "INSUFFICIENT_DATA", "NO_LABELS"])
def test_only_a_pass_promotes(ws, status):
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    shadow = dataclasses.replace(_passed("1", "2"), status=status, reasons=("why not",))
    result = promote(_ws(ws, inner), shadow)
    assert not result.promoted and status in result.reason and "why not" in result.reason
    assert inner.aliases[NAME]["champion"] == "1"
    refusals = read_events(ws, ["refusal"])
    assert refusals and status in refusals[0]["details"]["reason"]
    tags = inner.versions[NAME]["2"].tags
    assert tags["driftgate_decision"] == "refused" and "why not" in tags["driftgate_refusal_reason"]


def test_two_promotions_racing_cannot_both_win(ws):
    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    wsx = _ws(ws, inner)
    results: list[PromotionResult] = []
    barrier = threading.Barrier(2)

    def go():
        barrier.wait()
        results.append(promote(wsx, _passed("1", "2")))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.promoted for r in results) == [False, True]
    assert inner.aliases[NAME] == {"champion": "2", "previous_champion": "1"}


def test_rollback_restores_previous_champion_with_a_recorded_reason(ws):
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "2")
    inner.set_alias(NAME, "previous_champion", "1")
    result = rollback(_ws(ws, inner), reason="complaints from the call centre")
    assert result.promoted and result.status == "rolled_back" and result.champion_version == "1"
    assert inner.aliases[NAME] == {"champion": "1"}
    assert inner.versions[NAME]["2"].tags["driftgate_rollback_reason"] == "complaints from the call centre"
    event = read_events(ws, ["rollback"])[0]
    assert event["details"]["reason"] == "complaints from the call centre" and event["details"]["to"] == "1"
    again = rollback(_ws(ws, inner), reason="again")
    assert not again.promoted and "no previous_champion" in again.reason


def test_rollback_needs_a_reason_and_a_target(ws):
    inner = _fake()
    inner.set_alias(NAME, "champion", "2")
    with pytest.raises(PromotionRefused, match="reason is required"):
        rollback(_ws(ws, inner), reason="  ")
    assert not rollback(_ws(ws, inner), reason="bad model").promoted


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5])
def test_rollback_fault_at_every_step_leaves_aliases_as_before(ws, step):
    inner = _fake()
    inner.set_alias(NAME, "champion", "2")
    inner.set_alias(NAME, "previous_champion", "1")
    before = dict(inner.aliases[NAME])
    with pytest.raises(PromotionRefused):
        rollback(_ws(ws, FaultyRegistry(inner, fail_at=step, error=RegistryError("down", model=NAME))),
                 reason="bad")
    assert inner.aliases[NAME] == before


def test_a_shadow_result_survives_the_task_value_round_trip(ws):
    import json
    import math

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    shadow = dataclasses.replace(_passed("1", "2"), metrics={"challenger_roc_auc": 0.8, "delta_f1_score": math.nan})
    value = json.loads(shadow.to_json())  # what a Databricks task value carries: JSON, NaN as null
    assert value["metrics"]["delta_f1_score"] is None
    again = ShadowResult.from_dict(value)
    assert again.status == "PASS" and math.isnan(again.metrics["delta_f1_score"])
    assert promote(_ws(ws, inner), again).promoted
    assert "driftgate_delta_f1_score" not in inner.versions[NAME]["2"].tags


def test_approval_polls_until_the_tag_arrives(ws):
    from promotion_world import with_settings

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    wsx = with_settings(_ws(ws, inner), promotion={"require_approval": True, "approval_timeout_seconds": 5.0})
    timer = threading.Timer(0.3, lambda: inner.set_tag(NAME, "2", "Approval_Check", "Approved"))
    timer.start()
    try:
        assert promote(wsx, _passed("1", "2")).promoted
    finally:
        timer.cancel()


def test_approval_mode_waits_for_the_approved_tag(ws):
    from promotion_world import with_settings

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    inner.set_tag(NAME, "2", "Approval_Check", "pending")
    wsx = with_settings(_ws(ws, inner), promotion={"require_approval": True})
    waiting = promote(wsx, _passed("1", "2"))
    assert not waiting.promoted and waiting.status == "awaiting_approval"
    assert "Approval_Check=approved" in waiting.reason and inner.aliases[NAME]["champion"] == "1"
    inner.set_tag(NAME, "2", "Approval_Check", "approved")
    assert promote(wsx, _passed("1", "2")).promoted


def test_dry_run_is_opt_in_loud_and_moves_nothing(ws, caplog):
    from driftgate.workspace.audit import read_events
    from promotion_world import with_settings

    assert ws.settings.promotion.dry_run is False  # off unless asked for
    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    before = dict(inner.aliases[NAME])
    outcome = promote(with_settings(_ws(ws, inner), promotion={"dry_run": True}), _passed("1", "2"))
    assert not outcome.promoted and outcome.status == "dry_run" and "DRY RUN" in outcome.reason
    assert any("DRY RUN" in r.getMessage() and r.levelname == "WARNING" and r.name.startswith("driftgate")
               for r in caplog.records)
    assert inner.aliases[NAME] == before
    assert read_events(ws, ["promotion"], 1)[0]["status"] == "dry_run"


@pytest.mark.parametrize("current, promoted, broken", [
    ({"champion": "2", "previous_champion": "1", "challenger": None}, True, []),
    ({"champion": None, "previous_champion": None, "challenger": "1"}, False, []),
    ({"champion": None, "previous_champion": None, "challenger": "1"}, True, ["champion is unset"]),
    ({"champion": "2", "previous_champion": "2", "challenger": None}, True, ["previous_champion equals champion"]),
    ({"champion": None, "previous_champion": "1", "challenger": None}, False, ["champion is unset"]),
    ({"champion": "2", "previous_champion": "1", "challenger": "2"}, True, ["challenger equals champion"]),
])
def test_alias_invariant(current, promoted, broken):
    from driftgate.promotion import check_alias_invariant

    found = check_alias_invariant(current, promoted=promoted)
    assert len(found) == len(broken) and all(b in f for b, f in zip(broken, found))
    assert "unfinished" in check_alias_invariant(current, promoted=promoted, open_intents=1)[0]


def _left_by_a_dead_process(ws, inner, *, moved: int):
    """What a promotion of v2 over v1 leaves when its process dies after ``moved`` alias moves."""
    from driftgate.promotion.intent import APPLY, Move, write_phase

    move = Move(intent_id="dead1", op="promote", model=NAME, version="2", started_at=time.time(),
                before={"champion": "1", "previous_champion": None, "challenger": "2"},
                moves=(("previous_champion", "1"), ("champion", "2"), ("challenger", None)),
                tags=(("2", "driftgate_decision", "promoted"),),
                event={"kind": "promotion", "status": "promoted", "subject": f"{NAME}@2",
                       "details": {"reason": "v2 promoted to champion over v1"}},
                notify_kind="promotion")
    write_phase(ws, move, APPLY)
    for alias, version in move.moves[:moved]:
        inner.set_alias(NAME, alias, version) if version else inner.delete_alias(NAME, alias)
    return move


def test_recovery_completes_a_promotion_the_process_died_in(ws):
    """The bug: killed after previous_champion was set, v1 was lost as rollback target for good."""
    from driftgate.promotion import recover
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    _left_by_a_dead_process(ws, inner, moved=1)
    result = recover(_ws(ws, inner))
    assert result.outcome == "completed" and result.violations == ()
    assert inner.aliases[NAME] == {"champion": "2", "previous_champion": "1"}
    assert inner.versions[NAME]["2"].tags["driftgate_decision"] == "promoted"
    events = read_events(ws, ["promotion", "refusal"])
    assert [(e["status"], e["event_id"], e["details"]["recovered"]) for e in events] == [("promoted", "dead1", True)]
    assert recover(_ws(ws, inner)) is None
    assert rollback(_ws(ws, inner), reason="bad").champion_version == "1"  # the rollback target survived


def test_a_later_promote_recovers_before_judging(ws):
    """The bug: a later promote of the same shadow result just recorded another refusal."""
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    _left_by_a_dead_process(ws, inner, moved=1)
    again = promote(_ws(ws, inner), _passed("1", "2"))
    assert not again.promoted and "challenger alias points at nothing" in again.reason  # v2 is champion already
    assert inner.aliases[NAME] == {"champion": "2", "previous_champion": "1"}
    assert [(e["kind"], e["status"]) for e in read_events(ws, ["promotion", "refusal"])] == [
        ("refusal", "refused"), ("promotion", "promoted")]


def test_an_abandoned_move_leaves_the_next_promotion_free(ws):
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    _left_by_a_dead_process(ws, inner, moved=2)
    inner.set_alias(NAME, "challenger", "3")  # the next cycle's challenger, set before anything recovered
    assert promote(_ws(ws, inner), _passed("2", "3")).promoted  # the abandoned intent does not block it
    assert inner.aliases[NAME] == {"champion": "3", "previous_champion": "2"}
    assert [(e["kind"], e["status"]) for e in read_events(ws, ["promotion", "refusal"])] == [
        ("promotion", "promoted"), ("refusal", "error")]


def test_recovery_reverts_a_move_whose_version_is_gone(ws):
    from driftgate.promotion import recover
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    _left_by_a_dead_process(ws, inner, moved=1)
    del inner.versions[NAME]["2"]
    inner.aliases[NAME].pop("challenger")  # deleting a version deletes its aliases
    result = recover(_ws(ws, inner))
    assert result.outcome == "reverted" and "v2 no longer exists" in result.message
    assert inner.aliases[NAME] == {"champion": "1"} and result.violations == ()
    assert [e["status"] for e in read_events(ws, ["promotion", "refusal"])] == ["refused"]


def test_an_intent_left_open_after_the_outcome_is_closed_without_moving_anything(ws, monkeypatch, caplog):
    from driftgate.promotion import intent, recover
    from driftgate.workspace.audit import read_events

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    real = intent.write_phase

    def closing_fails(ws_, move, phase):
        if phase == intent.CLOSED:
            raise OSError("disk full")
        return real(ws_, move, phase)

    monkeypatch.setattr(intent, "write_phase", closing_fails)
    assert promote(_ws(ws, inner), _passed("1", "2")).promoted  # the outcome is recorded: done
    assert any("not closed yet" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(intent, "write_phase", real)
    result = recover(_ws(ws, inner))
    assert result.outcome == "closed" and inner.aliases[NAME] == {"champion": "2", "previous_champion": "1"}
    assert [e["status"] for e in read_events(ws, ["promotion", "refusal"])] == ["promoted"]


def test_recovery_can_leave_young_intents_alone(ws):
    """``status`` without a lock (Databricks) must not race a promotion still running in a job."""
    from driftgate.promotion import recover

    inner = _fake()
    inner.set_alias(NAME, "champion", "1")
    inner.set_alias(NAME, "challenger", "2")
    move = _left_by_a_dead_process(ws, inner, moved=1)
    assert recover(_ws(ws, inner), min_age_seconds=600) is None  # written just now: maybe still running
    assert inner.aliases[NAME] == {"champion": "1", "previous_champion": "1", "challenger": "2"}
    assert recover(_ws(ws, inner)).intent_id == move.intent_id
