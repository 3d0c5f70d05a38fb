"""The pool's outbox relayed to ``sb:events:routing``, under a lease (the dispatcher's)."""

from __future__ import annotations

from typing import Any

from services.routing.adapters.redis.keys import Keys


class OutboxRelay:
    """Mixed into the store: the ``EventRelay`` port."""

    redis: Any
    keys: Keys
    outbox: str

    # -- outbox relay ------------------------------------------------------------------
    def relay(self, target: str, maxlen: int, batch: int = 500, block_ms: int = 0) -> int:
        """Move outbox entries to the public stream, oldest first; XADD before XDEL.

        A crash between the two re-sends entries: consumers deduplicate by event id.
        """
        if block_ms:
            got = self.redis.xread({self.outbox: "0-0"}, count=batch, block=block_ms)
            entries = got[0][1] if got else []
        else:
            entries = self.redis.xrange(self.outbox, count=batch)
        if not entries:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(target, fields, maxlen=maxlen, approximate=True)
        pipe.execute()
        self.redis.xdel(self.outbox, *[eid for eid, _ in entries])
        return len(entries)

    def acquire_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """A renewable lease: only one dispatcher relays at a time (keeps event order)."""
        key = self.keys.key("lease", name)
        if self.redis.set(key, holder, nx=True, px=ttl_ms):
            return True
        if self.redis.get(key) == holder:
            self.redis.pexpire(key, ttl_ms)
            return True
        return False
