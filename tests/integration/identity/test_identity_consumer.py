"""The CRM projection and erasure, through the real bus."""

from __future__ import annotations

import time
from typing import Any

from services.identity.adapters.redis.keys import ERASURE_MEMORY, ckey, erased_key
from services.identity.consumer import build_consumer, event_ms
from shared.bus import EventPublisher
from shared.events import STREAMS, Event
from tests.integration.identity.conftest import CHROME, GOLD, Api


def publish(redis: Any, type_: str, at: str | None = None, **data: Any) -> Event:
    event = Event.new(type_, data, source="crm", occurred_at=at)
    EventPublisher(redis, STREAMS["crm"]).publish(event)
    return event


def drain(redis: Any) -> None:
    consumer = build_consumer(redis, "test", block_ms=10)
    while consumer.run_once():
        pass


def test_the_crm_tier_decides_the_policy(api: Api, redis: Any) -> None:
    api.tier("gold", GOLD)
    publish(redis, "crm.profile.created", profile_id="c-1", tier="gold", language="en")
    drain(redis)
    assert api.start("c-1", "chat").json["tier"] == "gold"
    publish(
        redis,
        "crm.profile.updated",
        profile_id="c-1",
        tier="silver",
        language="en",
        changed=["tier"],
    )
    drain(redis)
    assert api.start("c-1", "chat", tier="gold").json["tier"] == "silver"


def test_an_older_event_delivered_late_never_overwrites_a_newer_one(api: Api, redis: Any) -> None:
    # Consumers of one group (or a re-sent batch) may deliver a customer's events out of
    # order: the projection keeps what the newest event said.
    api.tier("gold", GOLD)
    newer, older = "2026-11-30T10:00:02.000Z", "2026-11-30T10:00:01.000Z"
    publish(redis, "crm.profile.updated", at=newer, profile_id="c-1", tier="gold")
    publish(redis, "crm.profile.updated", at=older, profile_id="c-1", tier="silver")
    drain(redis)
    assert api.start("c-1", "chat").json["tier"] == "gold"
    # A merge's late unmerge is kept apart the same way: the later merge stands.
    publish(redis, "crm.profile.merged", at=newer, survivor_id="c-9", source_id="c-1", tier="gold")
    publish(redis, "crm.profile.unmerged", at=older, source_id="c-1", survivor_id="c-9")
    drain(redis)
    assert redis.hget(ckey("c-1", "profile"), "merged_into") == "c-9"
    # The same time again (a re-delivery) applies, and a newer event still does.
    publish(redis, "crm.profile.unmerged", at=newer, source_id="c-1", survivor_id="c-9")
    publish(
        redis, "crm.profile.updated", at="2026-11-30T10:00:03Z", profile_id="c-1", tier="silver"
    )
    drain(redis)
    assert redis.hget(ckey("c-1", "profile"), "merged_into") is None
    assert api.start("c-1", "chat", tier="gold").json["tier"] == "silver"


def test_a_merge_gives_the_survivor_the_tier(api: Api, redis: Any) -> None:
    publish(
        redis, "crm.profile.merged", survivor_id="c-1", source_id="c-2", merge_id="m", tier="gold"
    )
    drain(redis)
    assert api.start("c-1", "chat").json["tier"] == "gold"


def test_erasure_deletes_everything_and_is_idempotent(api: Api, redis: Any) -> None:
    api.tier("gold", {**GOLD, "min_factors": 1})
    _, totp = api.enroll_totp("c-1")
    publish(redis, "crm.profile.created", profile_id="c-1", tier="gold", language="en")
    drain(redis)
    vid = api.start("c-1", "chat", device=CHROME).json["verification_id"]
    token = api.check(vid, "totp", code=totp.now()).json["session_token"]
    api.call("POST", "/v1/customers/c-1/devices", json={"verification_id": vid})
    event = publish(redis, "crm.profile.erased", profile_id="c-1")
    drain(redis)
    EventPublisher(redis, STREAMS["crm"]).publish(event)  # delivered twice
    drain(redis)
    assert api.introspect(token).json == {"active": False}
    export = api.call("GET", "/v1/customers/c-1/export", "admin").json
    assert export["factors"] == [] and export["devices"] == [] and export["sessions"] == []
    assert export["verifications"] == [] and export["profile"] is None
    leftovers = [k for k in redis.scan_iter("idn:*") if "c-1" in k]
    assert leftovers == []
    assert all(redis.zscore(k, "c-1") is None for k in redis.scan_iter("idn:fp:*"))


def test_an_older_profile_event_delivered_after_the_erasure_recreates_nothing(
    api: Api, redis: Any
) -> None:
    # Another consumer of the group (or a reclaimed pending entry) may hand over a
    # profile event the CRM wrote before the erasure only after the erasure was applied.
    api.tier("gold", GOLD)
    created, updated = "2026-11-30T10:00:01Z", "2026-11-30T10:00:02Z"
    erased_at = "2026-11-30T10:00:03Z"
    publish(redis, "crm.profile.created", at=created, profile_id="c-1", tier="silver")
    drain(redis)
    erasure = publish(redis, "crm.profile.erased", at=erased_at, profile_id="c-1")
    publish(redis, "crm.profile.updated", at=updated, profile_id="c-1", tier="gold")
    publish(
        redis, "crm.profile.merged", at=updated, survivor_id="c-1", source_id="c-2", tier="gold"
    )
    publish(
        redis, "crm.profile.merged", at=updated, survivor_id="c-9", source_id="c-1", tier="gold"
    )
    publish(redis, "crm.profile.unmerged", at=updated, survivor_id="c-9", source_id="c-1")
    # An event of the very millisecond of the erasure is not newer than it either.
    publish(redis, "crm.profile.updated", at=erased_at, profile_id="c-1", tier="gold")
    drain(redis)
    # What is left is the erasure's time alone, under a key that does not name the
    # customer, and it is forgotten after ERASURE_MEMORY.
    assert [k for k in redis.scan_iter("idn:*") if "c-1" in k] == []
    assert api.start("c-1", "chat").json["tier"] == "default"
    assert redis.get(erased_key("c-1")) == str(event_ms(erasure))
    assert ERASURE_MEMORY - 5 <= redis.ttl(erased_key("c-1")) <= ERASURE_MEMORY
    # Only the customers the erasure named are held back: the merge's other side projects.
    assert redis.hget(ckey("c-2", "profile"), "merged_into") == "c-1"
    assert redis.hget(ckey("c-9", "profile"), "tier") == "gold"


def test_a_profile_created_again_after_the_erasure_is_projected(api: Api, redis: Any) -> None:
    api.tier("gold", GOLD)
    publish(redis, "crm.profile.created", at="2026-11-30T10:00:01Z", profile_id="c-1", tier="gold")
    publish(redis, "crm.profile.erased", at="2026-11-30T10:00:02Z", profile_id="c-1")
    drain(redis)
    assert api.start("c-1", "chat").json["tier"] == "default"
    publish(redis, "crm.profile.created", at="2026-11-30T10:00:03Z", profile_id="c-1", tier="gold")
    drain(redis)
    assert api.start("c-1", "chat").json["tier"] == "gold"
    # An older erasure delivered late never moves the tombstone back ...
    publish(redis, "crm.profile.erased", at="2026-11-30T10:00:01Z", profile_id="c-2")
    publish(redis, "crm.profile.erased", at="2026-11-30T10:00:05Z", profile_id="c-2")
    publish(redis, "crm.profile.erased", at="2026-11-30T10:00:04Z", profile_id="c-2")
    publish(
        redis, "crm.profile.updated", at="2026-11-30T10:00:04.5Z", profile_id="c-2", tier="gold"
    )
    drain(redis)
    assert redis.exists(ckey("c-2", "profile")) == 0
    # ... and the newer profile event still applies after it.
    publish(redis, "crm.profile.updated", at="2026-11-30T10:00:06Z", profile_id="c-2", tier="gold")
    drain(redis)
    assert api.start("c-2", "chat").json["tier"] == "gold"


def test_an_erased_customers_event_reclaimed_from_a_dead_consumer_recreates_nothing(
    api: Api, redis: Any
) -> None:
    # The real redelivery path: consumer A read the older update and died before
    # acknowledging it; B applied the erasure; C later reclaims A's pending entry.
    api.tier("gold", GOLD)
    publish(redis, "crm.profile.updated", at="2026-11-30T10:00:01Z", profile_id="c-1", tier="gold")
    build_consumer(redis, "a").ensure_groups()
    assert redis.xreadgroup("identity", "a", {STREAMS["crm"]: ">"}, count=1)  # and dies
    publish(redis, "crm.profile.erased", at="2026-11-30T10:00:02Z", profile_id="c-1")
    b = build_consumer(redis, "b", block_ms=10)  # reclaims only after 30 s idle
    while b.run_once():
        pass
    assert (b.stats.handled, b.stats.reclaimed) == (1, 0)
    assert redis.xpending(STREAMS["crm"], "identity")["pending"] == 1
    time.sleep(0.01)
    c = build_consumer(redis, "c", block_ms=10, visibility_timeout_ms=5)
    while c.run_once():
        pass
    assert (c.stats.handled, c.stats.reclaimed) == (1, 1)
    assert redis.xpending(STREAMS["crm"], "identity")["pending"] == 0
    assert redis.exists(ckey("c-1", "profile")) == 0
    assert api.start("c-1", "chat").json["tier"] == "default"
