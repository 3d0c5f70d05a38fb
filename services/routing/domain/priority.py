"""Order of waiting tasks: an urgency score, not strict priority.

    urgency(t, now) = (now - sla_due_at) / 1 s                 # minus the deadline slack
                    + W_category[category]
                    + W_tier[tier]
                    + W_sentiment * max(0, -sentiment)
                    + W_escalated  (when sentiment is below the threshold)

Higher is served first. Every task's slack shrinks at the same rate, so the
order of two tasks never changes with time: the queue stores the
time-invariant key

    order_key = sla_due_at_ms - 1000 * (W_category + W_tier + W_sentiment * neg + W_escalated)

(lower first). With all weights zero this is earliest-deadline-first, which
meets every deadline whenever capacity allows; the weights advance a task by
that many seconds. A basic task (60 s target) therefore outranks an urgent one
(300 s) raised at the same time unless the urgent one's weights exceed the
240 s difference - strict priority would starve basic contacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.routing.domain.model import CATEGORIES, InvalidRequest

DEFAULT_SLA_SECONDS: Mapping[str, int] = {"basic": 60, "complex": 1800, "urgent": 300}
# Seconds a task is advanced in the queue.
DEFAULT_CATEGORY_WEIGHTS: Mapping[str, float] = {"basic": 0.0, "complex": 0.0, "urgent": 270.0}
DEFAULT_TIER_WEIGHTS: Mapping[str, float] = {"vip": 30.0, "platinum": 30.0, "gold": 15.0}


@dataclass(frozen=True)
class PriorityPolicy:
    sla_seconds: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))
    category_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS)
    )
    tier_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_WEIGHTS))
    sentiment_weight: float = 60.0  # seconds per unit of negative sentiment
    sentiment_threshold: float = -0.5  # below: escalate
    escalation_weight: float = 120.0

    def __post_init__(self) -> None:
        for category in CATEGORIES:
            if self.sla_seconds.get(category, 0) <= 0:
                raise InvalidRequest(f"SLA target of {category} must be a positive number")

    def sla_due_ms(self, category: str, created_ms: int) -> int:
        return created_ms + 1000 * int(self.sla_seconds[category])

    def escalates(self, sentiment: float | None) -> bool:
        return sentiment is not None and sentiment < self.sentiment_threshold

    def bonus_seconds(self, category: str, tier: str | None, sentiment: float | None) -> float:
        bonus = self.category_weights.get(category, 0.0)
        bonus += self.tier_weights.get((tier or "").lower(), 0.0)
        if sentiment is not None and sentiment < 0:
            bonus += self.sentiment_weight * -sentiment
        if self.escalates(sentiment):
            bonus += self.escalation_weight
        return bonus

    def order_key(
        self, category: str, tier: str | None, sentiment: float | None, sla_due_ms: int
    ) -> int:
        """Queue key, lower first; constant while the task waits."""
        return sla_due_ms - round(1000 * self.bonus_seconds(category, tier, sentiment))

    def urgency(
        self,
        category: str,
        tier: str | None,
        sentiment: float | None,
        sla_due_ms: int,
        now_ms: int,
    ) -> float:
        """The documented score at ``now`` (higher first); ``-order_key`` plus a constant."""
        return (now_ms - sla_due_ms) / 1000 + self.bonus_seconds(category, tier, sentiment)

    def priority(self, category: str, tier: str | None, sentiment: float | None) -> int:
        """The integer shown to clients: the seconds a task is advanced, 0 for a plain one."""
        return round(self.bonus_seconds(category, tier, sentiment))
