"""Routing configuration: one frozen value read once from the environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.routing.domain.matching import RelaxationStep, Strategy, strategy_named
from services.routing.domain.model import InvalidRequest
from services.routing.domain.priority import (
    DEFAULT_CATEGORY_WEIGHTS,
    DEFAULT_SLA_SECONDS,
    DEFAULT_TIER_WEIGHTS,
    PriorityPolicy,
)
from shared.config import ConfigError, Settings


@dataclass(frozen=True)
class RoutingConfig:
    pool: str = "default"
    strategy_name: str = "longest_idle"
    priority: PriorityPolicy = field(default_factory=PriorityPolicy)
    relaxation: tuple[RelaxationStep, ...] = ()
    reservation_timeout_s: float = 20.0
    sticky_timeout_s: float = 20.0
    sticky_memory_s: int = 30 * 86400
    decline_cooloff_s: float = 30.0
    away_after_missed: int = 3
    senior_team: str = "senior"
    senior_team_wait_s: float = 60.0
    lead_after_s: float = 7200.0
    lead_team: str = "team-lead"
    # then anyone qualified: a shift without leads must not strand the task for good
    lead_team_wait_s: float = 600.0
    retention_s: int = 7 * 86400
    scan_limit: int = 64
    tasks_from_cases: bool = False
    verified_ttl_s: int = 1800  # a verification counts for tasks created this long after
    long_poll_slots: int | None = None  # None: half the gunicorn worker's threads

    @property
    def strategy(self) -> Strategy:
        return strategy_named(self.strategy_name)

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingConfig:
        env = settings.env

        def weights(name: str, default: Mapping[str, float]) -> dict[str, float]:
            raw = env.get(name)
            if not raw:
                return dict(default)
            try:
                value = json.loads(raw)
                return {str(k): float(v) for k, v in value.items()}
            except (ValueError, AttributeError, TypeError) as exc:
                raise ConfigError(f"{name} must be a JSON object of numbers") from exc

        sla = dict(DEFAULT_SLA_SECONDS)
        for category in sla:
            sla[category] = settings.int_env(f"ROUTING_SLA_{category.upper()}", sla[category])
        try:
            steps_raw = json.loads(env.get("ROUTING_RELAXATION") or "[]")
            if not isinstance(steps_raw, list):
                raise InvalidRequest("ROUTING_RELAXATION must be a JSON list")
            steps = tuple(RelaxationStep.from_dict(s) for s in steps_raw)
            policy = PriorityPolicy(
                sla_seconds=sla,
                category_weights=weights("ROUTING_CATEGORY_WEIGHTS", DEFAULT_CATEGORY_WEIGHTS),
                tier_weights=weights("ROUTING_TIER_WEIGHTS", DEFAULT_TIER_WEIGHTS),
                sentiment_weight=settings.float_env("ROUTING_SENTIMENT_WEIGHT", 60.0),
                sentiment_threshold=settings.float_env("ROUTING_SENTIMENT_THRESHOLD", -0.5),
                escalation_weight=settings.float_env("ROUTING_ESCALATION_WEIGHT", 120.0),
            )
            config = cls(
                pool=settings.str_env("ROUTING_POOL", "default"),
                strategy_name=settings.str_env("ROUTING_STRATEGY", "longest_idle"),
                priority=policy,
                relaxation=steps,
                reservation_timeout_s=settings.float_env("ROUTING_RESERVATION_TIMEOUT", 20.0),
                sticky_timeout_s=settings.float_env("ROUTING_STICKY_TIMEOUT", 20.0),
                decline_cooloff_s=settings.float_env("ROUTING_DECLINE_COOLOFF", 30.0),
                away_after_missed=settings.int_env("ROUTING_AWAY_AFTER_MISSED", 3),
                senior_team=settings.str_env("ROUTING_SENIOR_TEAM", "senior"),
                senior_team_wait_s=settings.float_env("ROUTING_SENIOR_TEAM_WAIT", 60.0),
                lead_after_s=settings.float_env("ROUTING_TEAM_LEAD_AFTER", 7200.0),
                lead_team=settings.str_env("ROUTING_TEAM_LEAD_TEAM", "team-lead"),
                lead_team_wait_s=settings.float_env("ROUTING_TEAM_LEAD_WAIT", 600.0),
                tasks_from_cases=settings.bool_env("ROUTING_TASKS_FROM_CASES", False),
                verified_ttl_s=settings.int_env("ROUTING_VERIFIED_TTL", 1800, minimum=1),
                long_poll_slots=(
                    settings.int_env("ROUTING_LONG_POLL_SLOTS", 0, minimum=0)
                    if env.get("ROUTING_LONG_POLL_SLOTS")
                    else None
                ),
            )
            config.strategy  # noqa: B018 - fail at start on an unknown strategy
        except (ValueError, InvalidRequest) as exc:
            raise ConfigError(str(exc)) from exc
        if "{" in config.pool or "}" in config.pool:
            raise ConfigError("ROUTING_POOL must not contain braces (it is the hash tag)")
        return config
