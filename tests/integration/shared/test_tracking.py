"""The Redis-tracked read cache against a real redis-server (and a real cluster)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from redis.cluster import RedisCluster

from shared import tracking
from shared.testing import RedisClusterServers, RedisServer
from shared.tracking import TrackedCache


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def reader(request: pytest.FixtureRequest, redis_server: RedisServer, redis: Any) -> Iterator[Any]:
    client = redis_lib.Redis.from_url(
        redis_server.url, decode_responses=True, protocol=request.param
    )
    yield client
    client.close()


@pytest.fixture
def cache(reader: Any) -> Iterator[TrackedCache]:
    cache = TrackedCache(reader, ["t:", "u:"])
    yield cache
    cache.close()


def wait_until(predicate: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_repeated_read_is_answered_from_the_cache(cache: TrackedCache, redis: Any) -> None:
    redis.set("t:a", "1")
    redis.hset("u:h", mapping={"tier": "gold"})
    reads = [("GET", "t:a"), ("GET", "t:none"), ("HGET", "u:h", "tier"), ("HGETALL", "u:h")]
    assert cache.fetch(reads) == ["1", None, "gold", {"tier": "gold"}]
    assert (cache.hits, cache.misses) == (0, 4)
    assert cache.fetch(reads) == ["1", None, "gold", {"tier": "gold"}]
    assert (cache.hits, cache.misses) == (4, 4)


def test_a_write_by_anyone_is_seen_by_the_next_read(cache: TrackedCache, redis: Any) -> None:
    # No sleeps: the notice is in our socket before the writer's reply is.
    for i in range(200):
        redis.set("t:k", str(i))
        redis.sadd("u:s", str(i))
        got, members = cache.fetch([("GET", "t:k"), ("SMEMBERS", "u:s")])
        assert got == str(i)
        assert str(i) in members
    assert cache.hits == 0  # every write made the copy unusable
    cache.fetch([("GET", "t:k")])
    assert cache.hits == 1


def test_deletes_and_creations_are_seen(cache: TrackedCache, redis: Any) -> None:
    assert cache.fetch([("GET", "t:later"), ("EXISTS", "t:flag")]) == [None, 0]
    redis.set("t:later", "now")
    redis.set("t:flag", "1", ex=60)
    assert cache.fetch([("GET", "t:later"), ("EXISTS", "t:flag")]) == ["now", 1]
    redis.delete("t:later", "t:flag")
    assert cache.fetch([("GET", "t:later"), ("EXISTS", "t:flag")]) == [None, 0]


def test_flushall_empties_the_cache(cache: TrackedCache, redis: Any) -> None:
    redis.set("t:a", "1")
    redis.set("u:b", "2")
    assert cache.fetch([("GET", "t:a"), ("GET", "u:b")]) == ["1", "2"]
    redis.flushall()
    # Unlike a keyed write's, FLUSHALL's notice is sent just after the flusher's reply
    # (see shared/tracking.py): it may reach our socket a moment after that reply.
    assert wait_until(lambda: cache.fetch([("GET", "t:a")]) == [None])
    # One notice emptied all of it, and not by a reset of the cache.
    assert cache.fetch([("GET", "u:b")]) == [None]
    assert cache.live and cache.resets == 0


def test_a_fill_that_raced_a_write_is_not_kept(
    cache: TrackedCache, redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis.set("t:k", "old")
    load = cache._load

    def racing(reads: Any) -> list[Any]:
        values = load(reads)  # read "old" ...
        redis.set("t:k", "new")  # ... and it changes before the answer is stored
        return values

    monkeypatch.setattr(cache, "_load", racing)
    assert cache.fetch([("GET", "t:k")]) == ["old"]  # concurrent with the write: either
    monkeypatch.setattr(cache, "_load", load)
    assert cache.fetch([("GET", "t:k")]) == ["new"]


def test_callers_cannot_change_what_is_cached(cache: TrackedCache, redis: Any) -> None:
    redis.sadd("u:s", "a")
    (members,) = cache.fetch([("SMEMBERS", "u:s")])
    members.add("intruder")
    assert cache.fetch([("SMEMBERS", "u:s")]) == [{"a"}]


def test_only_tracked_reads_are_accepted(cache: TrackedCache) -> None:
    with pytest.raises(ValueError):
        cache.fetch([("GET", "elsewhere:k")])  # a write there would never be heard of
    with pytest.raises(ValueError):
        cache.fetch([("SET", "t:k", "1")])


def test_a_lost_notice_connection_means_no_cached_answers_until_it_is_back(
    cache: TrackedCache, redis: Any
) -> None:
    redis.set("t:a", "1")
    cache.fetch([("GET", "t:a")])
    assert cache.live
    killed = [c["id"] for c in redis.client_list() if set(c["flags"]) & {"t", "P"}]
    assert killed
    for client_id in killed:
        redis.client_kill_filter(_id=client_id)
    redis.set("t:a", "2")  # the notice has nowhere to go
    assert cache.fetch([("GET", "t:a")]) == ["2"]
    assert not cache.live  # bypassed: nothing it holds could be trusted
    assert wait_until(lambda: cache.live)  # the listener reopens it
    redis.set("t:a", "3")
    assert cache.fetch([("GET", "t:a")]) == ["3"]
    assert cache.fetch([("GET", "t:a")]) == ["3"]


def test_a_notice_connection_that_stops_answering_stops_the_cache(
    cache: TrackedCache, redis: Any
) -> None:
    redis.set("t:a", "1")
    cache.fetch([("GET", "t:a")])
    time.sleep(3.5)  # several heartbeats, each answered
    assert cache.live and cache.resets == 0
    # A host gone silent looks like this: nothing is answered, nothing is reported.
    redis.execute_command("CLIENT", "PAUSE", 4000, "ALL")
    try:
        assert wait_until(lambda: cache.resets == 1, 6)
    finally:
        redis.execute_command("CLIENT", "UNPAUSE")
    assert wait_until(lambda: cache.live)
    redis.set("t:a", "2")
    assert cache.fetch([("GET", "t:a")]) == ["2"]


def test_a_server_that_refuses_tracking_means_plain_reads(
    redis: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # As an ACL (or a managed Redis) that forbids CLIENT would.
    redis.execute_command("ACL", "SETUSER", "notrack", "on", ">pw", "~*", "+@all", "-client")
    host_port = redis_server.url.split("//")[1]
    client = redis_lib.Redis.from_url(f"redis://notrack:pw@{host_port}", decode_responses=True)
    cache = TrackedCache(client, ["t:"])
    # Another test may have left the root logger at CRITICAL: listen where it is said.
    caplog.set_level(logging.WARNING, logger="sb.tracking")
    logger = logging.getLogger("sb.tracking")
    logger.addHandler(caplog.handler)
    try:
        redis.set("t:a", "1")
        assert cache.fetch([("GET", "t:a")]) == ["1"]
        redis.set("t:a", "2")
        assert cache.fetch([("GET", "t:a")]) == ["2"]
        assert not cache.live and cache.hits == 0
        # Said once (one record, whichever way it reached the capture).
        warnings = {id(r) for r in caplog.records if "read cache unavailable" in r.getMessage()}
        assert len(warnings) == 1
    finally:
        logger.removeHandler(caplog.handler)
        cache.close()
        client.close()
        redis.execute_command("ACL", "DELUSER", "notrack")


def test_a_forked_child_starts_empty_and_hears_its_own_notices(
    cache: TrackedCache, redis: Any, redis_server: RedisServer
) -> None:
    redis.set("t:a", "parent")
    assert cache.fetch([("GET", "t:a")]) == ["parent"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn worker forked from a loaded master does
        try:
            cache.r.connection_pool.reset()
            first = cache.fetch([("GET", "t:a")])[0]
            redis_lib.Redis.from_url(redis_server.url).set("t:a", "child")
            second = cache.fetch([("GET", "t:a")])[0]
            os.write(write, f"{first},{second},{cache.hits}".encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100).decode() == "parent,child,0"
    os.close(read)
    assert cache.fetch([("GET", "t:a")]) == ["child"]  # the parent heard it too


def test_on_a_cluster_every_primary_is_heard(
    cluster_servers: RedisClusterServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking, "TOPOLOGY", 0.2)
    client = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    writer = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    cache = TrackedCache(client, ["t:"])
    try:
        keys = [f"t:{{{n}}}:k" for n in range(12)]  # spread over the slots of all primaries
        assert len({client.keyslot(k) // 5462 for k in keys}) == 3
        for key in keys:
            writer.set(key, "1")
        assert cache.fetch([("GET", k) for k in keys]) == ["1"] * 12
        assert cache.fetch([("GET", k) for k in keys]) == ["1"] * 12
        assert cache.hits == 12
        for key in keys:
            writer.set(key, "2")
            assert cache.fetch([("GET", key)]) == ["2"]
        time.sleep(1.0)  # several topology checks: the same primaries, nothing reset
        assert cache.live and cache.resets == 0
        # Primaries other than those it listens to (a failover, a node added): reset.
        with cache._lock:
            cache._primaries = frozenset({"127.0.0.1:1"})
        assert wait_until(lambda: cache.resets == 1)
        assert wait_until(lambda: cache.live)
        assert cache.fetch([("GET", keys[0])]) == ["2"]
    finally:
        cache.close()
        client.close()
        writer.close()
