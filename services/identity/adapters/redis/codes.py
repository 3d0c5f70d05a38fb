"""Delivered codes, the send throttle, and references (document checks)."""

from __future__ import annotations

import json
import time
from typing import Any

from services.identity.adapters.redis.base import RedisBase, _j
from services.identity.adapters.redis.keys import P, vkey


class RedisCodes(RedisBase):
    def store_code(self, vid: str, factor: str, record: dict[str, Any], ttl: int) -> None:
        self.r.set(f"{vkey(vid)}:code:{factor}", _j(record), ex=max(1, int(ttl)))

    def peek_code(self, vid: str, factor: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{vkey(vid)}:code:{factor}")
        return json.loads(raw) if raw else None

    def consume_code(self, vid: str, factor: str, digest: str) -> bool:
        return bool(self._consume_code(keys=[f"{vkey(vid)}:code:{factor}"], args=[digest]))

    def throttle(self, dest_key: str, window: int, max_sends: int, cooldown: int) -> int:
        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{time.perf_counter_ns()}"
        return int(
            self._throttle(
                keys=[f"{P}thr:{dest_key}"],
                args=[now_ms, window * 1000, max_sends, cooldown * 1000, member],
            )
        )

    def put_ref(self, kind: str, key: str, value: str, ttl: int) -> None:
        self.r.set(f"{P}ref:{kind}:{key}", value, ex=ttl)

    def get_ref(self, kind: str, key: str) -> str | None:
        return self.r.get(f"{P}ref:{kind}:{key}")
