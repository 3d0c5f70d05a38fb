"""Sessions, and the status answers served from them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from services.identity.adapters.redis.base import RedisBase, _j
from services.identity.adapters.redis.keys import (
    POLICIES,
    STATUS_COUNTED_KEPT,
    ckey,
    shard_of,
    shard_of_id,
    skey,
    stats_keys,
    tag,
)
from services.identity.ports import StatusSnapshot
from shared.events import Event

log = logging.getLogger("sb.identity.store")


class RedisSessions(RedisBase):
    def save_session(self, session: dict[str, Any], ttl: int, events: Sequence[Event]) -> None:
        cid, sid = session["customer_id"], session["sid"]
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(skey(sid), _j(session), ex=max(1, ttl))
            pipe.sadd(ckey(cid, "sessions"), sid)
            pipe.expire(ckey(cid, "sessions"), 86400 * 2)
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def session(self, sid: str) -> dict[str, Any] | None:
        (raw,) = self._read([("GET", skey(sid))])
        return json.loads(raw) if raw else None

    def sessions_of(self, cid: str) -> list[dict[str, Any]]:
        return self.sessions_by_id(cid, sorted(self.r.smembers(ckey(cid, "sessions"))))

    def revoke_session(self, sid: str, events_for: Any) -> dict[str, Any] | None:
        """Delete the session; ``events_for(session)`` gives the events to publish with it."""
        key = skey(sid)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            raw = pipe.get(key)
            if raw is None:
                return None
            session = json.loads(raw)
            pipe.multi()
            pipe.delete(key)
            pipe.srem(ckey(session["customer_id"], "sessions"), sid)
            self._stage(pipe, events_for(session), shard_of_id(sid))
            pipe.execute()
        return session

    def count_status_reuse(self, sid: str, channel: str, ttl: int) -> None:
        """Count a verified status answer as a reuse, once per session and channel."""
        shard = shard_of_id(sid)
        marker = f"{tag(shard)}statusreuse:{sid}:{channel}"
        if marker in self._status_counted:
            return
        if len(self._status_counted) >= STATUS_COUNTED_KEPT:
            self._status_counted.clear()  # forgetting costs a round trip, never a count
        try:
            self._status_reuse(keys=[marker, stats_keys(shard)[0]], args=[max(1, ttl)])
        except RedisError as exc:  # a KPI: the IVR's answer matters more than its count
            log.warning("status reuse not counted", extra={"error": type(exc).__name__})
            return
        self._status_counted.add(marker)

    def status_snapshot(self, cid: str) -> StatusSnapshot:
        """(projected tier, active sessions, stored policies): one script call standalone,
        the script and a read of the policies on a cluster."""
        keys = [ckey(cid, "profile"), ckey(cid, "sessions")]
        if self.cache is not None:  # all hits in the steady state: no round trip
            tier, sids, policies = self.cache.fetch(
                [("HGET", keys[0], "tier"), ("SMEMBERS", keys[1]), ("HGETALL", POLICIES)]
            )
            raw = self.cache.fetch([("GET", skey(sid)) for sid in sorted(sids)])
            # A cached copy outlives the key's TTL until Redis expires the key itself.
            now = time.time()
            live = [s for s in map(json.loads, filter(None, raw)) if s.get("exp", now + 1) > now]
            return StatusSnapshot(tier or "", live, policies)
        prefix = tag(shard_of(cid)) + "s:"
        if self.cluster:
            tier, sessions, _ = self._status(keys=keys, args=[prefix])
            policies = self.r.hgetall(POLICIES)
        else:
            tier, sessions, flat = self._status(keys=[*keys, POLICIES], args=[prefix])
            policies = dict(zip(flat[::2], flat[1::2], strict=True))
        return StatusSnapshot(tier, [json.loads(v) for v in sessions], policies)

    def sessions_by_id(self, cid: str, sids: Sequence[str]) -> list[dict[str, Any]]:
        if not sids:
            return []
        keys = [skey(sid) for sid in sids]
        if self.cluster and len({shard_of_id(sid) for sid in sids}) > 1:
            with self.r.pipeline(transaction=False) as pipe:  # ids not made here: per slot
                for key in keys:
                    pipe.get(key)
                values = pipe.execute()
        else:
            values = self.r.mget(keys)
        gone = [sid for sid, v in zip(sids, values, strict=True) if v is None]
        if gone:
            self.r.srem(ckey(cid, "sessions"), *gone)
        return [json.loads(v) for v in values if v is not None]
