"""The shared drift gate: rules over the monitor's metric tables → a :class:`Decision`.

``decide`` is pure (rows + rules → Decision); ``evaluate`` reads the metric tables,
calls it, records the decision (MLflow run, ``driftgate_decisions`` row, audit event) and
publishes the task values ``drift_exceeded`` and ``decision``.
"""
if __name__ != "driftgate.gating":  # the gating/ folder installs as driftgate.gating only (setup.py)
    raise ImportError(f"import driftgate.gating, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.gating.config import GateConfig, Rule
from driftgate.gating.decision import STATUSES, Decision, RuleResult, WindowResult
from driftgate.gating.evaluate import decisions_table, evaluate, read_decisions
from driftgate.gating.gate import AlwaysGate, Gate, NeverGate, RuleGate, decide, gate_for

__all__ = [
    "GateConfig", "Rule", "Decision", "RuleResult", "WindowResult", "STATUSES",
    "Gate", "RuleGate", "AlwaysGate", "NeverGate", "gate_for", "decide",
    "evaluate", "decisions_table", "read_decisions",
]
