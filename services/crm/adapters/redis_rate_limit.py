"""A fixed-window rate limiter in Redis (one INCR + EXPIRE round trip per hit)."""

from __future__ import annotations

import time
from typing import Any


class RedisRateLimiter:
    def __init__(self, redis: Any, *, limit: int, window_seconds: int = 60) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds

    def hit(self, key: str, limit: int | None = None) -> int | None:
        now = time.time()
        window = int(now // self.window)
        name = f"sb:crm:rate:{key}:{window}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, self.window + 1)
        count = pipe.execute()[0]
        if count <= (self.limit if limit is None else limit):
            return None
        return max(1, int((window + 1) * self.window - now) + 1)
