"""Trusted devices and the risk of shared fingerprints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from services.identity.adapters.redis.base import RedisBase, _j
from services.identity.adapters.redis.keys import P, ckey, shard_of
from shared.events import Event


class RedisDevices(RedisBase):
    def devices(self, cid: str) -> list[dict[str, Any]]:
        rows = [json.loads(v) for v in self.r.hvals(ckey(cid, "devices"))]
        return sorted(rows, key=lambda d: (d["trusted_at"], d["device_id"]))

    def save_device(self, cid: str, device: dict[str, Any], events: Sequence[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(ckey(cid, "devices"), device["device_id"], _j(device))
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def delete_device(self, cid: str, device_id: str, events: Sequence[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(ckey(cid, "devices"), device_id)
            self._stage(pipe, events, shard_of(cid))
            return bool(pipe.execute()[0])

    def see_fingerprint(self, fp: str, cid: str, now: float, window: int = 86400) -> int:
        """Record that ``cid`` used ``fp``; how many customers used it within ``window``."""
        key = f"{P}fp:{fp}"
        with self.r.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {cid: now})
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zcard(key)
            pipe.expire(key, window)
            count = int(pipe.execute()[2])
        with self.r.pipeline(transaction=True) as pipe:  # the customer's slot
            pipe.sadd(ckey(cid, "fps"), fp)
            pipe.expire(ckey(cid, "fps"), window)
            pipe.execute()
        return count

    def flag(self, fp: str, ttl: int = 86400) -> bool:
        return bool(self.r.set(f"{P}flag:{fp}", "1", nx=True, ex=ttl))

    def is_flagged(self, fp: str) -> bool:
        (found,) = self._read([("EXISTS", f"{P}flag:{fp}")])
        return bool(found)
