"""Routing services on the real test Redis, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.service import RoutingService


class Clock:
    def __init__(self, start: int = 1_800_000_000_000) -> None:
        self.ms = start

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(redis: Any, clock: Clock) -> Callable[..., RoutingService]:
    def make(**config: Any) -> RoutingService:
        cfg = replace(RoutingConfig(), **config)
        return RoutingService(RedisRoutingStore(redis, cfg.pool), cfg, clock=clock)

    return make


@pytest.fixture
def service(make_service: Callable[..., RoutingService]) -> RoutingService:
    return make_service()


def events(redis: Any, pool: str = "default", type_prefix: str = "") -> list[dict[str, Any]]:
    """Every event of the pool's outbox (and the public stream), in commit order."""
    import json

    out = []
    for stream in ("sb:events:routing", f"sb:rt:{{{pool}}}:outbox"):
        for _, fields in redis.xrange(stream):
            if fields["type"].startswith(type_prefix):
                out.append(
                    {"type": fields["type"], "id": fields["id"], **json.loads(fields["data"])}
                )
    return out
