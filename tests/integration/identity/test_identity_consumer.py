"""The CRM projection and erasure, through the real bus."""

from __future__ import annotations

from typing import Any

from services.identity.adapters.redis_store import ckey
from services.identity.consumer import build_consumer
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
