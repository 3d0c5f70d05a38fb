"""Cluster only: the shards' outboxes relayed to the event stream, one relay at a time."""

from __future__ import annotations

from services.identity.adapters.redis.base import RedisBase
from services.identity.adapters.redis.keys import OUTBOXES, RELAY_LEASE


class RedisOutbox(RedisBase):
    def relay(self, target: str, maxlen: int, batch: int = 500) -> int:
        """Cluster: move every outbox to ``target``, oldest first; XADD before XDEL."""
        with self.r.pipeline(transaction=False) as pipe:
            for box in OUTBOXES:
                pipe.xrange(box, count=batch)
            found = pipe.execute()
        moves = [(box, entries) for box, entries in zip(OUTBOXES, found, strict=True) if entries]
        if not moves:
            return 0
        with self.r.pipeline(transaction=False) as pipe:
            for _, entries in moves:
                for _, fields in entries:
                    pipe.xadd(target, fields, maxlen=maxlen, approximate=True)
            pipe.execute()
        with self.r.pipeline(transaction=False) as pipe:
            for box, entries in moves:
                pipe.xdel(box, *[eid for eid, _ in entries])
            pipe.execute()
        return sum(len(entries) for _, entries in moves)

    def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        """A renewable lease: one relay at a time keeps each outbox in order."""
        if self.r.set(RELAY_LEASE, holder, nx=True, px=ttl_ms):
            return True
        if self.r.get(RELAY_LEASE) == holder:
            self.r.pexpire(RELAY_LEASE, ttl_ms)
            return True
        return False
