"""A start without a device or a session token is one round trip to Redis (issue 17), and
answers, stores, counts and publishes what the start of reads-then-create did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from redis.connection import Connection

from services.identity.adapters.redis.keys import ckey, shard_of, skey
from services.identity.bootstrap import Wiring
from tests.integration.identity.conftest import GOLD, Api


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times the app's Redis clients sent something (each a round trip)."""
    sent = [0]
    send = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    yield sent


def test_a_start_without_device_or_token_is_one_round_trip(
    api: Api, round_trips: list[int], redis: Any
) -> None:
    api.enroll_totp("c-1")
    api.start("c-1")  # the first of a process loads the script
    round_trips[0] = 0
    r = api.start("c-1", tier="gold")
    assert round_trips[0] == 1
    assert r.status_code == 201, r.json
    assert r.json["tier"] == "gold" and r.json["status"] == "pending"
    assert r.json["available_factors"] == ["totp"] and r.json["satisfied_factors"] == []
    vid = r.json["verification_id"]
    stored = api.call("GET", f"/v1/verifications/{vid}").json
    assert stored["tier"] == "gold" and stored["status"] == "pending"
    started = [f for _, f in redis.xrange("sb:events:identity")][-1]
    assert started["type"] == "identity.verification.started" and vid in started["data"]
    requests = api.call("GET", "/v1/stats", "admin").json["requests"]
    assert requests["fresh"] == 2 and requests.get("asked_again", 0) == 0


def test_the_projected_tier_wins_over_the_hint(api: Api, redis: Any) -> None:
    assert api.tier("gold", GOLD).status_code == 201
    redis.hset(ckey("c-2", "profile"), "tier", "gold")
    r = api.start("c-2", tier="basic")
    assert r.status_code == 201 and r.json["tier"] == "gold"
    assert r.json["required"]["min_factors"] == 2
    rows = api.call("GET", "/v1/stats", "admin").json["by_tier_channel"]
    assert [(row["tier"], row["channel"]) for row in rows] == [("gold", "chat")]


def test_an_active_session_is_counted_as_asked_again_and_expired_ids_forgotten(
    api: Api, service: Wiring, redis: Any
) -> None:
    _, totp = api.enroll_totp("c-3")
    vid = api.start("c-3").json["verification_id"]
    approved = api.check(vid, "totp", code=totp.now()).json
    assert approved["status"] == "approved"
    expired = service.store.new_id("s", "c-3")  # its session key is gone
    redis.sadd(ckey("c-3", "sessions"), expired)
    r = api.start("c-3")
    assert r.status_code == 201 and r.json["status"] == "pending"  # no token: no reuse
    assert redis.smembers(ckey("c-3", "sessions")) == {approved["sid"]}
    requests = api.call("GET", "/v1/stats", "admin").json["requests"]
    assert requests["asked_again"] == 1 and requests["fresh"] == 1


def test_a_session_made_in_another_shard_is_looked_up_too(
    api: Api, service: Wiring, redis: Any
) -> None:
    other = next(c for c in (f"x-{i}" for i in range(100)) if shard_of(c) != shard_of("c-4"))
    sid = service.store.new_id("s", other)  # in another slot than the customer's keys
    redis.set(skey(sid), json.dumps({"sid": sid}), ex=600)
    redis.sadd(ckey("c-4", "sessions"), sid)
    assert api.start("c-4").status_code == 201
    assert api.call("GET", "/v1/stats", "admin").json["requests"]["asked_again"] == 1
