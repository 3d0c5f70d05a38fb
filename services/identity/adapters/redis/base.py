"""What every Redis area module shares: the connection, the read cache, the sealer,
the scripts, ids and events (staged with the state they go with)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from redis.cluster import RedisCluster

from services.identity.adapters.redis.keys import outbox, shard_of
from services.identity.adapters.redis.scripts import lua
from services.identity.domain.ids import is_minted
from shared.events import Event
from shared.sealing import Sealer
from shared.tracking import Read, TrackedCache, read_through


def _j(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits (a client's device description may hold one)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _oldest_first(rows: Mapping[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    found = [r for r in rows.values() if r is not None]
    return sorted(found, key=lambda f: (f["created_at"], f["factor_id"]))


class RedisBase:
    def __init__(
        self,
        redis: Any,
        publisher: Any = None,
        cache: TrackedCache | None = None,
        *,
        sealer: Sealer | None = None,
    ) -> None:
        self.r = redis
        self.publisher = publisher
        # Seals each factor's ``data`` (a TOTP secret, a destination) at rest; a store
        # without one (the consumer's) can erase factors but never read or write them.
        self.sealer = sealer
        # Serves the token and status checks without a round trip; see shared/tracking.py.
        self.cache = cache
        # On a cluster sb:events:identity is in another slot than the state it goes with.
        self.cluster = isinstance(redis, RedisCluster)
        self._settle = redis.register_script(lua("settle"))
        self._settle_success = redis.register_script(lua("settle_success"))
        self._accept_step = redis.register_script(lua("accept_step"))
        self._throttle = redis.register_script(lua("throttle"))
        self._consume_code = redis.register_script(lua("consume_code"))
        self._status = redis.register_script(lua("status"))
        self._approve = redis.register_script(lua("approve"))
        self._claim_settle_approve = redis.register_script(lua("claim_settle_approve"))
        self._create = redis.register_script(lua("create"))
        self._reseal = redis.register_script(lua("reseal"))
        self._status_reuse = redis.register_script(lua("status_reuse"))
        # Markers this process wrote: the IVR's repeated questions cost no round trip
        # (status answers from the read cache), only the first of each per process.
        self._status_counted: set[str] = set()

    def new_id(self, prefix: str, cid: str) -> str:
        """An opaque id whose keys live in the shard of customer ``cid``: the prefix, the
        shard in two hex digits, 30 more of a uuid4 (``is_minted`` knows the shape)."""
        return f"{prefix}-{shard_of(cid):02x}{uuid.uuid4().hex[2:]}"

    @staticmethod
    def is_minted(oid: str, prefix: str) -> bool:
        """Whether ``new_id(prefix, ...)`` could have made ``oid``."""
        return is_minted(oid, prefix)

    # -- events ---------------------------------------------------------------
    def _event_stream(self, shard: int | None) -> str:
        """Where events written with state of ``shard`` go: the stream, or the outbox."""
        if self.publisher is None:
            return ""
        return outbox(shard) if self.cluster else self.publisher.stream

    def _script_events(self, events: Iterable[Event]) -> dict[str, Any]:
        """The ``events`` and ``maxlen`` a script's payload needs (see ``_append_events``)."""
        return {
            "events": [[x for kv in e.to_fields().items() for x in kv] for e in events],
            "maxlen": int(getattr(self.publisher, "maxlen", 1_000_000)),
        }

    def _stage(self, pipe: Any, events: Iterable[Event], shard: int | None) -> None:
        stream = self._event_stream(shard)
        if stream:
            maxlen = self.publisher.maxlen
            for event in events:
                pipe.xadd(stream, event.to_fields(), maxlen=maxlen, approximate=True)

    def publish(self, events: Sequence[Event]) -> None:
        """Events written without state; on a cluster through the customer's outbox."""
        if not events or self.publisher is None:
            return
        if not self.cluster:
            self.publisher.publish_many(events)
            return
        with self.r.pipeline(transaction=False) as pipe:
            for event in events:
                cid = event.data.get("customer_id")
                self._stage(pipe, [event], shard_of(str(cid)) if cid else None)
            pipe.execute()

    def _read(self, reads: Sequence[Read]) -> list[Any]:
        if self.cache is not None:
            return self.cache.fetch(reads)
        return read_through(self.r, reads)
