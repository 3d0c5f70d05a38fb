"""The scripts run unchanged on Redis Cluster (one hash tag per pool); the outbox relay
keeps order, runs alone under its lease, and a repeated relay only duplicates ids."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from redis.cluster import RedisCluster

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.dispatcher import relay_loop, timer_loop
from services.routing.service import RoutingService
from shared.testing import RedisClusterServers

from .conftest import Clock

AGENT = {"skills": {"billing": 3}, "languages": ["zh"], "channels": {"chat": 1}}
TASK = {"channel": "chat", "customer_id": "c-1", "category": "basic", "language": "zh"}


@pytest.fixture(scope="module")
def cluster(cluster_servers: RedisClusterServers) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    yield client
    client.close()


def test_two_pools_route_on_different_cluster_nodes(cluster: RedisCluster) -> None:
    clock = Clock()
    pools = ["emea", "apac"]
    slots = {cluster.keyslot(f"sb:rt:{{{p}}}:outbox") for p in pools}
    assert len(slots) == 2
    for pool in pools:
        cfg = replace(RoutingConfig(), pool=pool)
        svc = RoutingService(RedisRoutingStore(cluster, pool), cfg, clock=clock)
        svc.store.put_agents({"a1": {**AGENT, "status": "available"}}, clock())
        first = svc.create_task(TASK)
        second = svc.create_task({**TASK, "customer_id": "c-2"})
        assert (first["status"], second["status"]) == ("reserved", "queued")
        svc.accept(first["reservation_id"])
        svc.complete_task(first["task_id"])
        assert svc.task_view(second["task_id"])["agent_id"] == "a1"
        clock.advance(61)
        svc.tick()
        assert svc.store.relay("sb:events:routing", 10_000) > 0
        assert svc.queue_stats()["items"][0]["answered"] == 1
    types = [f["type"] for _, f in cluster.xrange("sb:events:routing")]
    assert types.count("routing.task.assigned") == 2
    assert types.count("routing.reservation.timeout") == 2


def test_the_relay_moves_the_outbox_in_order_and_only_one_relays(
    redis: Any, make_service: Any
) -> None:
    svc = make_service()
    for i in range(30):
        svc.create_task({**TASK, "customer_id": f"c{i}"})
    outbox = [f["id"] for _, f in redis.xrange("sb:rt:{default}:outbox")]
    assert svc.store.acquire_lease("relay", "me", 5000)
    assert not svc.store.acquire_lease("relay", "other", 5000)
    assert svc.store.acquire_lease("relay", "me", 5000)  # renewed by its holder
    stop = threading.Event()
    threads = [
        threading.Thread(target=relay_loop, args=(svc.store, 10_000, stop, holder))
        for holder in ("me", "other")
    ]
    for t in threads:
        t.start()
    try:
        import time

        deadline = time.monotonic() + 60
        while redis.xlen("sb:events:routing") < len(outbox) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    relayed = [f["id"] for _, f in redis.xrange("sb:events:routing")]
    assert relayed == outbox
    assert redis.xlen("sb:rt:{default}:outbox") == 0


def test_a_relay_that_died_before_deleting_only_repeats_event_ids(redis: Any, make_service) -> None:
    svc = make_service()
    svc.create_task(TASK)
    entries = redis.xrange("sb:rt:{default}:outbox")
    for _, fields in entries:  # the XADD of a relay that crashed before its XDEL
        redis.xadd("sb:events:routing", fields)
    svc.store.relay("sb:events:routing", 10_000)
    ids = [f["id"] for _, f in redis.xrange("sb:events:routing")]
    assert len(ids) == 2 * len(entries) and len(set(ids)) == len(entries)


def test_two_dispatchers_escalate_each_breach_exactly_once(redis: Any) -> None:
    cfg = replace(
        RoutingConfig(),
        priority=replace(
            RoutingConfig().priority, sla_seconds={"basic": 1, "complex": 1, "urgent": 1}
        ),
    )
    services = [RoutingService(RedisRoutingStore(redis), cfg) for _ in range(2)]
    for i in range(200):
        services[i % 2].create_task({**TASK, "customer_id": f"c{i}"})
    stop = threading.Event()
    threads = [threading.Thread(target=timer_loop, args=(s, stop)) for s in services]
    for t in threads:
        t.start()
    try:
        import time

        def escalated() -> list[str]:
            return [
                json.loads(f["data"])["task_id"]
                for _, f in redis.xrange("sb:rt:{default}:outbox")
                if f["type"] == "routing.task.escalated"
            ]

        deadline = time.monotonic() + 60
        while len(escalated()) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # both dispatchers keep ticking: nothing more may fire
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    ids = escalated()
    assert len(ids) == len(set(ids)) == 200
