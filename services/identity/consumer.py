"""Stream consumer process of the identity service: `python -m services.identity.consumer`.

Keeps the local projection of CRM profiles (the customer's tier) and erases
everything identity holds on a customer when the CRM erases the profile.
Projection writes go through ``delivery.atomic()`` (exactly once); erasure is
naturally idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.identity.adapters.redis_store import RedisStore
from shared.bus import Consumer, Delivery, Handler, trim_loop
from shared.config import Settings
from shared.consumer_main import Runnable, consumer_name, run
from shared.events import STREAMS, Event


def handlers(store: RedisStore) -> Mapping[str, Handler]:
    def profile(event: Event, delivery: Delivery) -> None:
        data = event.data
        cid = str(data.get("profile_id") or "")
        fields = {k: str(data[k]) for k in ("tier", "language") if data.get(k)}
        if cid and fields:
            with delivery.atomic() as pipe:
                store.stage_profile(pipe, cid, fields)

    def merged(event: Event, delivery: Delivery) -> None:
        survivor, tier = str(event.data.get("survivor_id") or ""), event.data.get("tier")
        source = str(event.data.get("source_id") or "")
        with delivery.atomic() as pipe:
            if survivor and tier:
                store.stage_profile(pipe, survivor, {"tier": str(tier)})
            if source:
                store.stage_profile(pipe, source, {"merged_into": survivor})

    def unmerged(event: Event, delivery: Delivery) -> None:
        source = str(event.data.get("source_id") or "")
        if source:
            with delivery.atomic() as pipe:
                pipe.hdel(f"idn:c:{source}:profile", "merged_into")

    def erased(event: Event, delivery: Delivery) -> None:
        cid = str(event.data.get("profile_id") or "")
        if cid:
            store.erase(cid)  # deleting what is gone already changes nothing: idempotent

    return {
        "crm.profile.created": profile,
        "crm.profile.updated": profile,
        "crm.profile.merged": merged,
        "crm.profile.unmerged": unmerged,
        "crm.profile.erased": erased,
    }


def build_consumer(redis: Any, name: str | None = None, **options: Any) -> Consumer:
    return Consumer(
        redis, [STREAMS["crm"]], "identity", name, handlers(RedisStore(redis)), **options
    )


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    # The producer trims its own stream once every consumer group has acknowledged.
    return [
        build_consumer(redis, consumer_name("identity")).run,
        trim_loop(redis, [STREAMS["identity"]]),
    ]


if __name__ == "__main__":
    run("identity", build)
