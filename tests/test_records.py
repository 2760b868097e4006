"""Typed statuses (driftgate.core.records): closed sets in code, plain strings in every output."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from pydantic import ValidationError

from driftgate.core.records import GateStatus, PromotionStatus, RunKeyStatus, ShadowStatus
from driftgate.gating.decision import Decision
from driftgate.promotion.results import PromotionResult, ShadowResult
from driftgate.triggers.state import RunKeyRecord

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("status", list(GateStatus))
def test_a_decision_cannot_contradict_its_status(status):
    exceeded = status is GateStatus.EXCEEDED
    assert Decision(status=status, drift_exceeded=exceeded, evaluated_at=NOW).status is status
    with pytest.raises(ValidationError, match="drift_exceeded must be"):
        Decision(status=status, drift_exceeded=not exceeded, evaluated_at=NOW)


def test_decision_json_and_rows_carry_plain_strings():
    decision = Decision(status="OK", drift_exceeded=False, evaluated_at=NOW)
    assert decision.status is GateStatus.OK and decision.status == "OK" and f"{decision.status}" == "OK"
    assert json.loads(decision.to_json())["status"] == "OK"
    assert json.dumps({"s": decision.status}) == '{"s": "OK"}'
    column = pa.array([decision.status])
    assert column.type == pa.string() and column.to_pylist() == ["OK"]
    assert Decision.from_json(decision.to_json()) == decision
    with pytest.raises(ValidationError):
        Decision(status="FINE", drift_exceeded=False, evaluated_at=NOW)


def test_stage_records_take_plain_strings_and_refuse_unknown_statuses():
    shadow = ShadowResult(status="PASS", model_name="m", champion_version="1", challenger_version="2",
                          metrics={}, reasons=())
    assert shadow.status is ShadowStatus.PASS and shadow.passed
    assert json.loads(shadow.to_json())["status"] == "PASS"
    assert ShadowResult.from_dict(shadow.as_dict()).status is ShadowStatus.PASS
    assert PromotionResult(promoted=False, champion_version=None, reason="x").status is PromotionStatus.REFUSED
    assert json.loads(PromotionResult(promoted=True, champion_version="2", reason="x",
                                      status="promoted").to_json())["status"] == "promoted"
    record = RunKeyRecord(run_key="k", source="s", status="queued", claimed_at=NOW)
    assert record.status is RunKeyStatus.QUEUED
    for make in (lambda: ShadowResult(status="MAYBE", model_name="m", champion_version=None, challenger_version="2",
                                      metrics={}, reasons=()),
                 lambda: PromotionResult(promoted=False, champion_version=None, reason="x", status="moved"),
                 lambda: RunKeyRecord(run_key="k", source="s", status="lost", claimed_at=NOW)):
        with pytest.raises(ValueError, match="is not a valid"):
            make()
