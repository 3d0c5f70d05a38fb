"""The one place the routing service's real adapters are built and wired."""

from __future__ import annotations

from typing import Any

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.ports import RoutingStore
from services.routing.service import RoutingService
from shared.config import Settings


def build_service(settings: Settings, redis: Any) -> RoutingService:
    config = RoutingConfig.from_settings(settings)
    store: RoutingStore = RedisRoutingStore(redis, config.pool)  # mypy checks the port here
    return RoutingService(store, config)
