"""The one place the routing service's adapters are built and wired: the app, the
consumer and the dispatcher all take theirs from ``build``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.routing.adapters.redis import kpis
from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.ports import AgentStore, EventRelay, RoutingStore
from services.routing.service import RoutingService
from shared.bus import Handler
from shared.config import Settings


@dataclass(frozen=True)
class Wiring:
    config: RoutingConfig
    service: RoutingService  # the use cases
    agents: AgentStore  # the dispatcher re-files agents at start
    relay: EventRelay  # the dispatcher's outbox relay
    kpi_group: str  # the consumer group of the KPI projection
    kpi_handlers: Mapping[str, Handler]


def build(settings: Settings, redis: Any) -> Wiring:
    config = RoutingConfig.from_settings(settings)
    adapter = RedisRoutingStore(redis, config.pool)
    store: RoutingStore = adapter  # mypy checks the ports here
    relay: EventRelay = adapter
    return Wiring(
        config=config,
        service=RoutingService(store, config),
        agents=store,
        relay=relay,
        kpi_group=kpis.GROUP,
        # First response per category, folded from our own assignment events.
        kpi_handlers=kpis.handlers(redis, config.priority.sla_seconds),
    )
