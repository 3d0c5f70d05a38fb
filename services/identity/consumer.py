"""Stream consumer process of the identity service: `python -m services.identity.consumer`.

Keeps the local projection of CRM profiles (the customer's tier) and erases
everything identity holds on a customer when the CRM erases the profile.
Projection writes go through ``delivery.atomic()`` (exactly once) on a standalone
Redis and are plain idempotent writes on a cluster; erasure is naturally
idempotent. On a cluster it also relays the shards' outboxes to
``sb:events:identity`` (see ``adapters/redis/``).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis as redis_lib

from services.identity import bootstrap
from services.identity.ports import Outbox
from services.identity.projection import Projection
from shared import liveness
from shared.bus import Consumer, Delivery, Handler
from shared.config import Settings
from shared.consumer_main import Runnable, consumer_name, run
from shared.events import STREAMS, Event

log = logging.getLogger("sb.identity.consumer")


def event_ms(event: Event) -> int:
    """The event's time in ms, which orders a customer's projection (see ``_PROJECT``);
    an unreadable one is taken as now, so the event still applies."""
    try:
        at = datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return int(at.timestamp() * 1000)
    except (AttributeError, ValueError):
        return int(time.time() * 1000)


def handlers(projection: Projection) -> Mapping[str, Handler]:
    def profile(event: Event, delivery: Delivery) -> None:
        cid = str(event.data.get("profile_id") or "")
        projection.profile_changed(delivery, cid, event.data, event_ms(event))

    def merged(event: Event, delivery: Delivery) -> None:
        survivor = str(event.data.get("survivor_id") or "")
        source = str(event.data.get("source_id") or "")
        projection.merged(delivery, survivor, source, event.data.get("tier"), event_ms(event))

    def unmerged(event: Event, delivery: Delivery) -> None:
        source = str(event.data.get("source_id") or "")
        projection.unmerged(delivery, source, event_ms(event))

    def erased(event: Event, delivery: Delivery) -> None:
        projection.erased(str(event.data.get("profile_id") or ""), event_ms(event))

    return {
        "crm.profile.created": profile,
        "crm.profile.updated": profile,
        "crm.profile.merged": merged,
        "crm.profile.unmerged": unmerged,
        "crm.profile.erased": erased,
    }


def build_consumer(redis: Any, name: str | None = None, **options: Any) -> Consumer:
    projection = bootstrap.build_projection(redis)
    return Consumer(redis, [STREAMS["crm"]], "identity", name, handlers(projection), **options)


RELAY_LEASE_MS = 5000
RELAY_IDLE_SECONDS = (0.002, 0.02)  # wait after a busy / an empty pass


def relay_loop(
    store: Outbox, maxlen: int, stop: threading.Event, holder: str | None = None
) -> None:
    """Cluster only: the shards' outboxes to sb:events:identity, one relay at a time."""
    me = holder or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
    while not stop.is_set():
        liveness.stamp(1.0)  # the longest wait of a pass: the one without the lease
        try:
            if not store.acquire_lease(me, RELAY_LEASE_MS):
                stop.wait(1.0)
                continue
            moved = store.relay(STREAMS["identity"], maxlen)
        except redis_lib.ConnectionError as exc:
            log.warning("redis unavailable, retrying", extra={"error": str(exc)})
            stop.wait(1.0)
            continue
        stop.wait(RELAY_IDLE_SECONDS[0] if moved else RELAY_IDLE_SECONDS[1])


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    # shared.consumer_main also trims our own stream once every group has acknowledged.
    runnables: list[Runnable] = [
        build_consumer(redis, consumer_name("identity"), **settings.consumer_options()).run,
    ]
    store = bootstrap.build_outbox(redis)
    if store.cluster:
        runnables.append(functools.partial(relay_loop, store, settings.stream_maxlen))
    return runnables


if __name__ == "__main__":
    run("identity", build)
