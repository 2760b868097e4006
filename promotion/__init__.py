"""Champion/challenger: shadow evaluation on served traffic, then check-then-set alias moves.

``shadow`` replays the champion's recent traffic through both models and judges the
challenger with the pure :func:`driftgate.promotion.policy.decide`; ``promote`` moves
``champion`` only on PASS and only if nothing moved meanwhile; ``rollback`` restores
``previous_champion``. Every action lands in the audit trail. A move a dead process left
half-done is finished by ``recover`` (called by promote, rollback, status and at job start).
"""
if __name__ != "driftgate.promotion":  # the promotion/ folder installs as driftgate.promotion only (setup.py)
    raise ImportError(f"import driftgate.promotion, not {__name__}: run pip install -e . and import driftgate.*")
from driftgate.promotion.config import MetricCriterion, PromotionConfig
from driftgate.promotion.moves import aliases, promote, rollback
from driftgate.promotion.notify import notify_gate_decision
from driftgate.promotion.policy import ShadowEvidence, Verdict, decide
from driftgate.promotion.recovery import (RecoveryResult, alias_invariant, check_alias_invariant, recover,
                                          recovery_grace_seconds)
from driftgate.promotion.replay import set_challenger, shadow, shadow_table_name
from driftgate.promotion.results import PromotionResult, ShadowResult

__all__ = [
    "set_challenger", "shadow", "shadow_table_name", "promote", "rollback", "aliases", "ShadowResult",
    "PromotionResult", "PromotionConfig", "MetricCriterion", "ShadowEvidence", "Verdict", "decide",
    "notify_gate_decision", "recover", "recovery_grace_seconds", "RecoveryResult", "check_alias_invariant",
    "alias_invariant",
]
