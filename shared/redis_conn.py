"""The one place a Redis client is built (never at import time)."""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.config import Settings
from shared.redis_ready import ReadinessConnection


def connect(settings: Settings) -> Any:
    """A client for ``settings.redis_url``: standalone, or cluster when REDIS_CLUSTER."""
    # Rides out a blip (a failover, a restart) without holding a request for seconds.
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3)
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 10,
        "socket_connect_timeout": 3,
        "health_check_interval": 30,
    }
    if settings.redis_cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_url, **common)
    if settings.redis_url.startswith("redis://"):  # rediss:// and unix:// keep their own class
        common["connection_class"] = ReadinessConnection
    return redis.Redis.from_url(
        settings.redis_url,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        **common,
    )
