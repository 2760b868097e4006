"""Champion/challenger: shadow evaluation on served traffic, then check-then-set alias moves.

``shadow`` replays the champion's recent traffic through both models and judges the
challenger with the pure :func:`promotion.policy.decide`; ``promote`` moves
``champion`` only on PASS and only if nothing moved meanwhile; ``rollback`` restores
``previous_champion``. Every action lands in the audit trail.

Names resolve lazily: :mod:`driftgate.config` imports :mod:`promotion.config` while
the stage modules import :mod:`driftgate.config`, so eager imports here would be circular.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from driftgate.types import lazy_surface

_SURFACE = {
    "set_challenger": "promotion.replay", "shadow": "promotion.replay", "shadow_table_name": "promotion.replay",
    "promote": "promotion.moves", "rollback": "promotion.moves", "aliases": "promotion.moves",
    "ShadowResult": "promotion.results", "PromotionResult": "promotion.results",
    "PromotionConfig": "promotion.config", "MetricCriterion": "promotion.config",
    "ShadowEvidence": "promotion.policy", "Verdict": "promotion.policy", "decide": "promotion.policy",
    "notify_gate_decision": "promotion.notify",
}

__all__ = list(_SURFACE)


__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promotion.moves import aliases, promote, rollback
    from promotion.config import MetricCriterion, PromotionConfig
    from promotion.notify import notify_gate_decision
    from promotion.policy import ShadowEvidence, Verdict, decide
    from promotion.results import PromotionResult, ShadowResult
    from promotion.replay import set_challenger, shadow, shadow_table_name
