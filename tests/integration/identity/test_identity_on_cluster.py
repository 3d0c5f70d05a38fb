"""Identity runs unchanged on a 3-master Redis Cluster: every script and transaction
stays in the customer's shard, and events reach sb:events:identity through the
shards' outboxes, relayed in order by the consumer process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from redis.cluster import RedisCluster

from services.identity.adapters.redis.keys import (
    OUTBOXES,
    POLICIES,
    SHARDS,
    ckey,
    erased_key,
    outbox,
    shard_of,
    skey,
    stats_keys,
    tag,
    totp_key,
    vkey,
)
from services.identity.app import create_app
from services.identity.bootstrap import Wiring
from services.identity.consumer import build_consumer, relay_loop
from services.identity.domain.errors import CustomerLocked
from shared.bus import Consumer, EventPublisher
from shared.config import Settings
from shared.events import STREAMS, Event
from shared.testing import RedisClusterServers
from tests.integration.identity.conftest import CHROME, GOLD, Api

PHONE = "+8613800138000"
KBA = {"first_pet": "Rex", "birth_city": "Oslo"}


@pytest.fixture(scope="module")
def servers(cluster_servers: RedisClusterServers) -> RedisClusterServers:
    return cluster_servers


@pytest.fixture
def cluster(servers: RedisClusterServers) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(servers.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def app(servers: RedisClusterServers, base_env: dict[str, str]) -> Flask:
    env = {
        **base_env,
        "REDIS_URL": servers.url,
        "REDIS_CLUSTER": "true",
        "IDENTITY_KBA_ITERATIONS": "1000",
    }
    return create_app(Settings.from_env(env, service="identity"))


@pytest.fixture
def service(app: Flask) -> Wiring:
    return app.extensions["sb"].extras["identity"]


@pytest.fixture
def api(app: Flask, headers: Callable[[str], dict[str, str]]) -> Api:
    return Api(app.test_client(), headers)


@pytest.fixture
def cid() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"  # the cluster lives for the module: fresh customers


def relay(service: Wiring) -> int:
    return service.store.relay(STREAMS["identity"], 100_000)


def events_of(cluster: RedisCluster, cid: str) -> list[str]:
    return [
        f["type"]
        for _, f in cluster.xrange(STREAMS["identity"])
        if json.loads(f["data"]).get("customer_id") == cid
    ]


def enrolled(api: Api, cid: str) -> Any:
    assert api.tier("gold", GOLD).status_code in (200, 201)
    _, totp = api.enroll_totp(cid)
    assert api.enroll(cid, {"type": "sms_otp", "destination": PHONE}).status_code == 201
    assert api.enroll(cid, {"type": "kba", "answers": KBA}).status_code == 201
    return totp


def test_the_keys_of_a_customer_share_one_slot_and_the_shards_spread_over_the_nodes(
    cluster: RedisCluster, service: Wiring, cid: str
) -> None:
    store = service.store
    vid, sid, fid = (store.new_id(p, cid) for p in ("v", "s", "f"))
    keys = [ckey(cid, n) for n in ("profile", "factors", "sessions", "fail", "lock", "streak")]
    keys += [vkey(vid), vkey(vid) + ":att", skey(sid), totp_key(fid)]
    keys += [*stats_keys(shard_of(cid)), outbox(shard_of(cid))]
    assert len({cluster.keyslot(k) for k in keys}) == 1
    assert all(k.startswith(tag(shard_of(cid))) for k in keys)
    nodes = {cluster.get_node_from_key(tag(k) + "x").name for k in range(SHARDS)}
    assert len(nodes) == 3
    assert cluster.keyslot(POLICIES) == cluster.keyslot(outbox(None))


def test_totp_and_kba_approve_on_a_cluster_and_the_session_is_reused_on_voice(
    api: Api, cluster: RedisCluster, service: Wiring, cid: str
) -> None:
    totp = enrolled(api, cid)
    started = api.start(cid, "chat", tier="gold", device=CHROME)
    assert started.status_code == 201, started.json
    vid = started.json["verification_id"]
    first = api.check(vid, "totp", code=totp.now()).json
    assert first["status"] == "pending" and first["satisfied_factors"] == ["totp"]
    approved = api.check(vid, "kba", answers={"first_pet": "REX", "birth_city": "oslo"}).json
    assert approved["status"] == "approved" and approved["session_token"], approved
    token = approved["session_token"]
    claims = api.introspect(token).json
    assert claims["active"] and claims["sub"] == cid and set(claims["amr"]) == {"totp", "kba"}

    again = api.start(cid, "web", tier="gold", session_token=token, device=CHROME)
    assert again.status_code == 200 and again.json["reused"] is True, again.json
    status = api.call(
        "GET", f"/v1/customers/{cid}/verification-status", "ivr", query_string={"channel": "web"}
    ).json
    assert status["verified"] is True and status["sid"] == claims["sid"]
    assert api.call("GET", f"/v1/verifications/{vid}").json["status"] == "approved"

    assert api.call("POST", "/v1/sessions/revoke", json={"token": token}).status_code == 200
    assert api.introspect(token).json == {"active": False}

    assert cluster.xlen(outbox(shard_of(cid))) > 0  # nothing reached the stream yet
    assert relay(service) > 0
    assert cluster.xlen(outbox(shard_of(cid))) == 0
    types = events_of(cluster, cid)
    assert types[:3] == ["identity.factor.enrolled"] * 3  # totp once confirmed, sms, kba
    assert types[3:] == [
        "identity.verification.started",
        "identity.verification.approved",
        "identity.session.issued",
        "identity.verification.started",
        "identity.verification.approved",
        "identity.session.revoked",
    ]
    policy_events = [f["type"] for _, f in cluster.xrange(STREAMS["identity"])]
    assert "identity.policy.changed" in policy_events
    audit = api.call("GET", "/v1/admin/audit", "admin").json["items"]
    assert audit and audit[0]["tier"] == "gold"


def test_an_sms_code_works_once_and_sends_are_throttled_on_a_cluster(api: Api, cid: str) -> None:
    enrolled(api, cid)
    vid = api.start(cid, "chat", tier="gold").json["verification_id"]
    assert api.challenge(vid, "sms_otp").status_code == 200
    code = api.last_code(PHONE)
    assert api.check(vid, "sms_otp", code=code).json["satisfied_factors"] == ["sms_otp"]
    assert api.check(vid, "sms_otp", code=code).json["remaining_attempts"] == 5  # answered
    assert api.check(vid, "sms_otp", code="000000").json["remaining_attempts"] == 4
    assert api.challenge(vid, "sms_otp").status_code == 429


def test_wrong_codes_lock_the_customer_across_verifications_on_a_cluster(
    api: Api, cluster: RedisCluster, service: Wiring, cid: str
) -> None:
    enrolled(api, cid)
    vid = api.start(cid, "chat", tier="gold").json["verification_id"]
    answers = [api.check(vid, "totp", code="000000").json for _ in range(4)]
    assert [a["remaining_attempts"] for a in answers] == [4, 3, 2, 1]
    other = api.start(cid, "web", tier="gold").json["verification_id"]
    assert api.check(other, "totp", code="000000").json["status"] == "locked"
    r = api.check(vid, "kba", answers=KBA)
    assert r.status_code == 423 and int(r.headers["Retry-After"]) > 800
    relay(service)
    types = events_of(cluster, cid)
    assert types.count("identity.verification.failed") == 5
    assert types.count("identity.verification.locked") == 2  # each verification, once
    stats = api.call("GET", "/v1/stats", "admin").json
    assert stats  # the per-shard counters sum up on a cluster


def test_concurrent_wrong_codes_never_evaluate_more_than_max_attempts(
    api: Api, service: Wiring, cid: str
) -> None:
    enrolled(api, cid)
    vid = api.start(cid, "chat", tier="gold").json["verification_id"]
    results: list[int] = []

    def attempt() -> None:
        results.append(service_check(service, vid))

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert service.store.r.get(vkey(vid) + ":att") == "5"
    assert results.count(423) >= 7


def service_check(service: Wiring, vid: str) -> int:
    try:
        service.verification.check(vid, {"factor": "totp", "code": "000000"})
    except CustomerLocked:
        return 423
    return 200


def test_the_crm_projection_and_erasure_run_on_a_cluster(
    api: Api, cluster: RedisCluster, service: Wiring, cid: str
) -> None:
    api.tier("gold", {**GOLD, "min_factors": 1})
    other = f"{cid}-merged"
    crm = EventPublisher(cluster, STREAMS["crm"])
    crm.publish(Event.new("crm.profile.created", {"profile_id": cid, "tier": "gold"}, source="crm"))
    merged = Event.new(
        "crm.profile.merged",
        {"survivor_id": cid, "source_id": other, "merge_id": "m", "tier": "gold"},
        source="crm",
    )
    crm.publish(merged)
    crm.publish(merged)  # delivered twice: changes nothing
    consumer = build_consumer(cluster, f"test-{cid}", block_ms=10)
    while consumer.run_once():
        pass
    assert api.start(cid, "chat").json["tier"] == "gold"
    assert service.store.profile(other) == {"merged_into": cid}

    _, totp = api.enroll_totp(cid)
    vid = api.start(cid, "chat", device=CHROME).json["verification_id"]
    token = api.check(vid, "totp", code=totp.now()).json["session_token"]
    trusted = api.call("POST", f"/v1/customers/{cid}/devices", json={"verification_id": vid})
    assert trusted.status_code == 201, trusted.json
    erased = Event.new("crm.profile.erased", {"profile_id": cid}, source="crm")
    crm.publish(erased)
    crm.publish(erased)
    while consumer.run_once():
        pass
    assert api.introspect(token).json == {"active": False}
    export = api.call("GET", f"/v1/customers/{cid}/export", "admin").json
    assert export["factors"] == [] and export["sessions"] == [] and export["verifications"] == []
    leftovers = [k for k in cluster.scan_iter(match="idn:*") if f"c:{cid}:" in k]
    assert leftovers == []
    fps = list(cluster.scan_iter(match="idn:fp:*"))
    assert all(cluster.zscore(k, cid) is None for k in fps)


def test_an_erased_customer_stays_erased_on_a_cluster_until_a_newer_profile(
    api: Api, cluster: RedisCluster, cid: str
) -> None:
    crm = EventPublisher(cluster, STREAMS["crm"])

    def event(type_: str, at: str, **data: str) -> None:
        crm.publish(Event.new(type_, data, source="crm", occurred_at=at))

    consumer = build_consumer(cluster, f"test-{cid}", block_ms=10)
    event("crm.profile.created", "2026-11-30T10:00:01Z", profile_id=cid, tier="gold")
    event("crm.profile.erased", "2026-11-30T10:00:03Z", profile_id=cid)
    event("crm.profile.updated", "2026-11-30T10:00:02Z", profile_id=cid, tier="gold")
    while consumer.run_once():
        pass
    assert cluster.exists(ckey(cid, "profile")) == 0
    assert cluster.get(erased_key(cid)) is not None
    event("crm.profile.created", "2026-11-30T10:00:04Z", profile_id=cid, tier="gold")
    while consumer.run_once():
        pass
    assert cluster.hget(ckey(cid, "profile"), "tier") == "gold"


def test_the_relay_loop_keeps_each_customers_order_and_runs_alone(
    api: Api, cluster: RedisCluster, service: Wiring
) -> None:
    customers = [f"c-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for c in customers:
        assert api.enroll(c, {"type": "kba", "answers": KBA}).status_code == 201
        for _ in range(3):
            assert api.start(c, "chat").status_code == 201
    assert sum(cluster.xlen(box) for box in OUTBOXES) >= len(customers) * 4
    stop = threading.Event()
    threads = [
        threading.Thread(target=relay_loop, args=(service.store, 100_000, stop, holder))
        for holder in ("one", "two")
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while sum(cluster.xlen(box) for box in OUTBOXES) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert sum(cluster.xlen(box) for box in OUTBOXES) == 0
    for c in customers:
        assert (
            events_of(cluster, c)
            == ["identity.factor.enrolled"] + ["identity.verification.started"] * 3
        )


def test_a_relay_that_died_before_deleting_only_repeats_event_ids(
    api: Api, cluster: RedisCluster, service: Wiring, cid: str
) -> None:
    assert api.enroll(cid, {"type": "kba", "answers": KBA}).status_code == 201
    assert api.start(cid, "chat").status_code == 201
    mine = [
        fields
        for _, fields in cluster.xrange(outbox(shard_of(cid)))
        if json.loads(fields["data"]).get("customer_id") == cid
    ]
    assert len(mine) == 2
    for fields in mine:  # the XADD of a relay that crashed before its XDEL
        cluster.xadd(STREAMS["identity"], fields)
    relay(service)
    ids = [
        f["id"]
        for _, f in cluster.xrange(STREAMS["identity"])
        if json.loads(f["data"]).get("customer_id") == cid
    ]
    assert len(ids) == 4 and len(set(ids)) == 2
    handled: list[str] = []

    def handle(event: Event, _delivery: object) -> None:
        if event.data.get("customer_id") == cid:
            handled.append(event.id)

    consumer = Consumer(cluster, [STREAMS["identity"]], f"g-{cid}", "c", {"*": handle})
    while consumer.run_once(block_ms=10):
        pass
    assert sorted(handled) == sorted(set(ids))  # each event handled once


def test_concurrent_challenge_writes_all_stay_on_a_cluster(
    api: Api, service: Wiring, cid: str
) -> None:
    from tests.integration.identity.test_identity_challenges_store import (
        FACTORS,
        concurrent_writes,
    )

    vid = api.start(cid, "chat").json["verification_id"]
    concurrent_writes(service, vid)
    challenges = service.store.verification(vid)["challenges"]  # type: ignore[index]
    assert {f: challenges[f] for f in FACTORS} == {f: {"reference": f, "n": 4} for f in FACTORS}


def test_the_delivery_guard_counts_and_blocks_a_prefix_on_a_cluster(
    api: Api, cluster: RedisCluster, service: Wiring
) -> None:
    """Its check-and-count script touches one slot, and its event goes through the relay."""
    auto = {"min_sends": 2, "min_conversion": 0.5, "grace_seconds": 0, "block_seconds": 3600}
    put = api.call("PUT", "/v1/admin/delivery-policy", "admin", json={"auto_block": auto})
    assert put.status_code == 200, put.json
    try:
        answers = []
        for i in range(3):
            cid = f"c-{uuid.uuid4().hex[:8]}"
            number = f"+86139991399{i:02d}"
            assert api.enroll(cid, {"type": "sms_otp", "destination": number}).status_code == 201
            vid = api.start(cid, "chat").json["verification_id"]
            answers.append(api.challenge(vid, "sms_otp"))
        assert [r.status_code for r in answers] == [200, 200, 403]
        assert answers[2].json["reason"] == "prefix_blocked"
        relay(service)
        blocked = [
            json.loads(f["data"])
            for _, f in cluster.xrange(STREAMS["identity"])
            if f["type"] == "identity.delivery.prefix_blocked"
        ]
        assert [b["prefix"] for b in blocked] == ["+86-13999"]
    finally:
        api.call("DELETE", "/v1/admin/delivery-blocks/+86-13999", "admin")
        api.call("PUT", "/v1/admin/delivery-policy", "admin", json={})
