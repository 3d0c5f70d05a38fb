"""An Idempotency-Key claim is a lease renewed while its request runs: a request
slower than the lease still runs once, and a lost lease is never overwritten."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from shared import idempotency
from shared.app import Blueprint, build_app
from shared.auth import require_scope
from shared.config import Settings

LEASE = 0.6  # seconds: short, so that a request outlives several leases


class Gate:
    """Holds the slow endpoint's requests until the test lets them go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        self.runs = 0


def slow_app(settings: Settings, redis: Any, gate: Gate) -> Flask:
    blp = Blueprint("slow", __name__, url_prefix="/v1")

    @blp.route("/jobs", methods=["POST"])
    @require_scope("channel")
    def create() -> Any:
        gate.runs += 1
        gate.entered.set()
        assert gate.go.wait(30)
        return {"id": f"j-{redis.incr('jobs')}"}, 201

    app = build_app(settings, title="Slow", blueprints=[blp])
    app.extensions["sb_idem_leases"] = idempotency.Leases(LEASE)
    return app


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.go.set()  # never leave a request thread waiting


@pytest.fixture
def app(make_settings: Callable[..., Settings], redis: Any, gate: Gate) -> Flask:
    return slow_app(make_settings("crm"), redis, gate)


def claim_key(redis: Any) -> str:
    [key] = [k for k in redis.scan_iter("sb:idem:crm:*")]
    return key


def start(app: Flask, headers: dict[str, str], results: list[Any]) -> threading.Thread:
    def call() -> None:
        response = app.test_client().post("/v1/jobs", headers=headers)
        results.append((response.status_code, response.get_json()))

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def test_a_request_slower_than_the_lease_runs_once(app, gate, headers, redis) -> None:
    h = {**headers("channel"), "Idempotency-Key": "slow-1"}
    results: list[Any] = []
    first = start(app, h, results)
    assert gate.entered.wait(10)
    time.sleep(LEASE * 4)  # four leases: without renewal the claim would be gone
    key = claim_key(redis)
    assert json.loads(redis.get(key))["state"] == "pending"
    assert 0 < redis.pttl(key) <= LEASE * 1000

    retry = start(app, h, results)  # the client's retry waits for the first
    time.sleep(LEASE)
    assert gate.runs == 1
    gate.go.set()
    first.join(10)
    retry.join(10)
    assert gate.runs == 1
    assert redis.get("jobs") == "1"
    assert [status for status, _ in results] == [201, 201]
    assert results[0][1] == results[1][1] == {"id": "j-1"}
    # Stored for the idempotency TTL, and no longer renewed.
    assert json.loads(redis.get(key))["state"] == "done"
    assert redis.ttl(key) > 3600
    assert app.extensions["sb_idem_leases"].held() == 0


def test_the_lease_lapses_when_its_request_is_gone(app, gate, headers, redis) -> None:
    """A claim left by a process that died (nothing renews it) frees the key."""
    h = {**headers("channel"), "Idempotency-Key": "orphan"}
    leases = app.extensions["sb_idem_leases"]
    results: list[Any] = []
    first = start(app, h, results)
    assert gate.entered.wait(10)
    key = claim_key(redis)
    token = json.loads(redis.get(key))["token"]
    leases.release(key, token)  # as if its process had died: nobody renews it
    time.sleep(LEASE * 2)
    assert redis.get(key) is None
    gate.go.set()
    first.join(10)


def test_a_lost_claim_is_not_overwritten(app, gate, headers, redis, caplog) -> None:
    h = {**headers("channel"), "Idempotency-Key": "taken"}
    results: list[Any] = []
    first = start(app, h, results)
    assert gate.entered.wait(10)
    key = claim_key(redis)
    mine = json.loads(redis.get(key))
    other = json.dumps({**mine, "token": "someone-else"})
    redis.set(key, other)  # the claim went to another request (e.g. after a failover)
    time.sleep(LEASE)  # renewal leaves another's claim alone
    assert redis.pttl(key) == -1
    with caplog.at_level(logging.WARNING, logger="sb.idempotency"):
        gate.go.set()
        first.join(10)
    assert results == [(201, {"id": "j-1"})]
    assert redis.get(key) == other
    assert "idempotency claim lost" in caplog.text


def test_leases_renew_until_released_and_then_stop(redis) -> None:
    leases = idempotency.Leases(LEASE)
    claim = json.dumps({"state": "pending", "fp": "x", "token": "t-1"})
    redis.set("lease:a", claim, px=leases.ttl_ms)
    leases.hold(redis, "lease:a", "t-1")
    time.sleep(LEASE * 3)
    assert redis.get("lease:a") == claim
    leases.release("lease:a", "t-1")
    time.sleep(LEASE * 1.5)
    assert redis.get("lease:a") is None
    assert leases.held() == 0
    deadline = time.monotonic() + LEASE
    while leases._runner is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leases._runner is None  # no idle thread left behind


def test_leases_renew_on_a_cluster(cluster_servers) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    try:
        leases = idempotency.Leases(LEASE)
        keys = [f"sb:idem:identity:c:{i}" for i in range(6)]  # spread over the nodes
        claim = json.dumps({"state": "pending", "fp": "x", "token": "t"})
        for key in keys:
            client.set(key, claim, px=leases.ttl_ms)
            leases.hold(client, key, "t")
        time.sleep(LEASE * 3)
        assert [client.get(key) for key in keys] == [claim] * len(keys)
        for key in keys:
            leases.release(key, "t")
        time.sleep(LEASE * 1.5)
        assert [client.get(key) for key in keys] == [None] * len(keys)
    finally:
        client.close()
