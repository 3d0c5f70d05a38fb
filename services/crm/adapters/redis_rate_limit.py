"""A fixed-window rate limiter in Redis (one INCR + EXPIRE round trip per hit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RedisRateLimiter:
    def __init__(
        self,
        redis: Any,
        *,
        limit: int,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.clock = clock

    def _name(self, key: str, window: int) -> str:
        return f"sb:crm:rate:{key}:{window}"

    def _wait(self, window: int, now: float) -> int:
        return max(1, int((window + 1) * self.window - now) + 1)

    def hit(self, key: str, limit: int | None = None) -> int | None:
        now = self.clock()
        window = int(now // self.window)
        name = self._name(key, window)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, self.window + 1)
        count = pipe.execute()[0]
        if count <= (self.limit if limit is None else limit):
            return None
        return self._wait(window, now)

    def over(self, key: str, limit: int) -> int | None:
        now = self.clock()
        window = int(now // self.window)
        count = int(self.redis.get(self._name(key, window)) or 0)
        return self._wait(window, now) if count >= limit else None
