"""The event bus against a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from shared.bus import Consumer, Delivery, EventPublisher
from shared.events import Event, dead_stream
from shared.testing import ROOT

STREAM = "sb:events:test"


def publish(redis: Any, n: int, type_: str = "test.thing.happened") -> list[Event]:
    publisher = EventPublisher(redis, STREAM, maxlen=10_000)
    events = [Event.new(type_, {"n": i}, source="test") for i in range(n)]
    publisher.publish_many(events)
    return events


def pending(redis: Any) -> list[dict[str, Any]]:
    return redis.xpending_range(STREAM, "g", min="-", max="+", count=100)


def drain(consumer: Consumer, rounds: int = 20) -> None:
    for _ in range(rounds):
        if consumer.run_once(block_ms=10) == 0 and consumer.run_once(block_ms=10) == 0:
            return


def test_events_are_handled_in_order_and_acknowledged(redis) -> None:
    events = publish(redis, 250)
    seen: list[int] = []
    consumer = Consumer(
        redis, [STREAM], "g", "c1", {"test.thing.happened": lambda e, d: seen.append(e.data["n"])}
    )
    drain(consumer)
    assert seen == [e.data["n"] for e in events]
    assert redis.xpending(STREAM, "g")["pending"] == 0


def test_the_same_event_published_twice_is_handled_once(redis) -> None:
    event = Event.new("test.thing.happened", {"n": 1}, source="test")
    publisher = EventPublisher(redis, STREAM)
    publisher.publish(event)
    publisher.publish(event)
    handled: list[str] = []
    consumer = Consumer(redis, [STREAM], "g", "c1", {"*": lambda e, d: handled.append(e.id)})
    drain(consumer)
    assert handled == [event.id]
    assert consumer.stats.duplicates == 1


def test_groups_are_created_idempotently_and_read_from_the_start(redis) -> None:
    publish(redis, 3)  # published before any consumer existed
    seen: list[int] = []
    for name in ("a", "b"):
        Consumer(redis, [STREAM], "g", name, {}).ensure_groups()
    consumer = Consumer(redis, [STREAM], "g", "c", {"*": lambda e, d: seen.append(e.data["n"])})
    drain(consumer)
    assert seen == [0, 1, 2]


def test_a_poison_event_is_dead_lettered_and_the_stream_keeps_flowing(redis) -> None:
    publisher = EventPublisher(redis, STREAM)
    publisher.publish(Event.new("test.poison", {"n": -1}, source="test"))
    publish(redis, 5)
    seen: list[int] = []

    def handle(event: Event, delivery: Delivery) -> None:
        if event.type == "test.poison":
            raise ValueError("cannot digest this")
        seen.append(event.data["n"])

    consumer = Consumer(
        redis, [STREAM], "g", "c1", {"*": handle}, visibility_timeout_ms=20, max_deliveries=3
    )
    deadline = time.monotonic() + 60
    while consumer.stats.dead_lettered == 0 and time.monotonic() < deadline:
        consumer.run_once(block_ms=10)
        time.sleep(0.02)
    assert seen == [0, 1, 2, 3, 4]
    dead = redis.xrange(dead_stream(STREAM))
    assert len(dead) == 1
    assert dead[0][1]["type"] == "test.poison"
    assert dead[0][1]["error"] == "ValueError: cannot digest this"
    assert dead[0][1]["deliveries"] == "3"
    assert consumer.stats.failed == 3
    assert redis.xpending(STREAM, "g")["pending"] == 0


def test_a_malformed_entry_goes_straight_to_the_dead_letter_stream(redis) -> None:
    redis.xadd(STREAM, {"id": "x", "type": "t"})  # no data, no version
    publish(redis, 1)
    seen: list[int] = []
    consumer = Consumer(redis, [STREAM], "g", "c1", {"*": lambda e, d: seen.append(e.data["n"])})
    drain(consumer)
    assert seen == [0]
    assert redis.xlen(dead_stream(STREAM)) == 1


def test_an_entry_left_pending_by_a_dead_consumer_is_reclaimed(redis) -> None:
    publish(redis, 3)
    Consumer(redis, [STREAM], "g", "ghost", {}).ensure_groups()
    redis.xreadgroup("g", "ghost", {STREAM: ">"}, count=3)  # read, then "died"
    seen: list[int] = []
    survivor = Consumer(
        redis,
        [STREAM],
        "g",
        "alive",
        {"*": lambda e, d: seen.append(e.data["n"])},
        # Long enough that a busy machine does not idle them past it before the first
        # pass (at 50 ms it did); then awaited on Redis's clock, which decides it.
        visibility_timeout_ms=1000,
    )
    assert survivor.run_once(block_ms=10) == 0  # not idle long enough yet
    deadline = time.monotonic() + 60
    while min(p["time_since_delivered"] for p in pending(redis)) < 1000:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    survivor._next_reclaim = 0
    assert survivor.run_once(block_ms=10) == 3
    assert seen == [0, 1, 2]
    assert survivor.stats.reclaimed == 3
    assert redis.xpending(STREAM, "g")["pending"] == 0


CRASHING_CONSUMER = textwrap.dedent(
    """
    import sys, time, redis
    from shared.bus import Consumer
    r = redis.Redis.from_url(sys.argv[1], decode_responses=True)
    def handle(event, delivery):
        if sys.argv[2] == "after-effect":
            with delivery.atomic() as pipe:
                pipe.incr("effect")
        print("handling", flush=True)
        time.sleep(60)  # killed here, before the acknowledgement
    Consumer(r, ["sb:events:test"], "g", "doomed", {"*": handle}).run_once(block_ms=2000)
    """
)


@pytest.mark.parametrize("crash_point", ["before-effect", "after-effect"])
def test_a_consumer_killed_mid_batch_loses_nothing_and_repeats_nothing(
    redis, redis_url, crash_point
) -> None:
    publish(redis, 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CONSUMER, redis_url, crash_point],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"handling"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()

    def handle(event: Event, delivery: Delivery) -> None:
        with delivery.atomic() as pipe:
            pipe.incr("effect")

    rescuer = Consumer(redis, [STREAM], "g", "rescuer", {"*": handle}, visibility_timeout_ms=50)
    time.sleep(0.1)
    drain(rescuer)
    assert redis.get("effect") == "1"
    assert redis.xpending(STREAM, "g")["pending"] == 0


def test_atomic_effects_of_a_duplicate_delivery_apply_once(redis) -> None:
    publish(redis, 1)
    consumer = Consumer(redis, [STREAM], "g", "c", {})
    consumer.ensure_groups()
    entry_id, fields = redis.xreadgroup("g", "c", {STREAM: ">"})[0][1][0]
    event = Event.from_fields(fields)
    for _ in range(2):  # the same delivery handled twice, e.g. by two consumers
        delivery = Delivery(STREAM, entry_id, event, 1, redis, consumer)
        try:
            with delivery.atomic() as pipe:
                pipe.incr("effect")
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "AlreadyProcessed"
    assert redis.get("effect") == "1"


def test_run_stops_after_finishing_the_batch_in_hand(redis) -> None:
    publish(redis, 20)
    stop = threading.Event()
    seen: list[int] = []

    def handle(event: Event, delivery: Delivery) -> None:
        seen.append(event.data["n"])
        if len(seen) == 5:
            stop.set()  # a SIGTERM arriving mid-batch

    consumer = Consumer(redis, [STREAM], "g", "c", {"*": handle}, batch=20, block_ms=50)
    consumer.run(stop)
    assert seen == list(range(20))
    assert redis.xpending(STREAM, "g")["pending"] == 0


def test_publishing_trims_the_stream_approximately(redis) -> None:
    publisher = EventPublisher(redis, STREAM, maxlen=100)
    publisher.publish_many([Event.new("t.x.y", {}, source="t") for _ in range(1000)])
    assert 100 <= redis.xlen(STREAM) < 1000


def test_state_and_event_commit_together_in_one_transaction(redis) -> None:
    publisher = EventPublisher(redis, STREAM)
    pipe = redis.pipeline(transaction=True)
    pipe.set("state", "v1")
    publisher.stage(pipe, Event.new("t.state.changed", {"v": 1}, source="t"))
    pipe.execute()
    assert redis.get("state") == "v1" and redis.xlen(STREAM) == 1


def test_trimming_keeps_every_entry_a_slow_group_has_not_finished(redis) -> None:
    from shared.stream_trim import trim_consumed

    publisher = EventPublisher(redis, STREAM, maxlen=100_000)
    publisher.publish_many([Event.new("t.x.y", {"n": i}, source="t") for i in range(3000)])
    fast = Consumer(redis, [STREAM], "fast", "f", {"*": lambda e, d: None}, batch=500)
    slow_seen: list[int] = []
    slow = Consumer(
        redis, [STREAM], "slow", "s", {"*": lambda e, d: slow_seen.append(e.data["n"])}, batch=500
    )
    drain(fast)
    slow.run_once(block_ms=10)  # 500 read and acknowledged
    slow.flush()
    redis.xreadgroup("slow", "s2", {STREAM: ">"}, count=100)  # 100 more read, still pending
    removed = trim_consumed(redis, STREAM)
    assert removed > 0
    remaining = [int(Event.from_fields(f).data["n"]) for _, f in redis.xrange(STREAM)]
    assert remaining[0] <= 500  # the oldest pending entry (n=500) is still there
    assert remaining[-1] == 2999
    drain(slow)
    assert slow_seen == list(range(500)) + list(range(600, 3000))


def test_entries_acknowledged_between_the_two_reads_of_trimming_are_no_error(redis) -> None:
    """XINFO counts pending entries that a busy consumer acknowledges before XPENDING
    looks: trimming then goes up to what the group has read, and does not crash."""
    import redis as redis_lib

    from shared.stream_trim import safe_trim_point, trim_consumed

    class AcksFirst(redis_lib.Redis):
        """A real client that lets the consumer acknowledge just before XPENDING."""

        def xpending(self, name: Any, groupname: Any) -> Any:
            pending = redis.xpending_range(name, groupname, "-", "+", 1000)
            redis.xack(name, groupname, *[p["message_id"] for p in pending])
            return super().xpending(name, groupname)

    publish(redis, 50)
    redis.xgroup_create(STREAM, "busy", id="0")
    read = redis.xreadgroup("busy", "c", {STREAM: ">"}, count=50)  # all read, all pending
    last = read[0][1][-1][0]
    client = AcksFirst(connection_pool=redis.connection_pool)
    assert safe_trim_point(client, STREAM) == last
    assert redis.xpending(STREAM, "busy")["pending"] == 0
    publish(redis, 10)
    redis.xreadgroup("busy", "c", {STREAM: ">"}, count=10)
    trim_consumed(client, STREAM)  # the runnable's call: no exception either


def test_trimming_does_nothing_before_any_group_exists(redis) -> None:
    from shared.stream_trim import trim_consumed

    publish(redis, 10)
    assert trim_consumed(redis, STREAM) == 0
    assert redis.xlen(STREAM) == 10


def test_trimming_waits_for_every_group_the_product_runs_on_the_stream(redis) -> None:
    # sb:events:crm is read by identity, crm-kpi and routing: with only crm-kpi deployed
    # so far, nothing is trimmed, so identity later receives every erasure.
    from shared.events import GROUPS, STREAMS
    from shared.stream_trim import trim_consumed

    stream = STREAMS["crm"]
    EventPublisher(redis, stream, maxlen=100_000).publish_many(
        [
            Event.new("crm.profile.erased", {"profile_id": f"p-{i}"}, source="crm")
            for i in range(500)
        ]
    )
    drain(Consumer(redis, [stream], "crm-kpi", "k", {"*": lambda e, d: None}, batch=100))
    assert trim_consumed(redis, stream) == 0 and redis.xlen(stream) == 500
    seen: list[str] = []
    late = Consumer(redis, [stream], "identity", "i", {"*": lambda e, d: seen.append(e.id)})
    drain(late)
    assert len(seen) == 500
    for group in set(GROUPS[stream]) - {"crm-kpi", "identity"}:
        drain(Consumer(redis, [stream], group, "x", {"*": lambda e, d: None}, batch=100))
    assert trim_consumed(redis, stream) > 0  # every group has it all: now it goes


def test_a_slow_full_batch_is_not_reclaimed_and_handled_again_by_its_own_consumer(
    redis,
) -> None:
    publish(redis, 4)
    calls: list[int] = []

    def slow(event: Event, _: Delivery) -> None:
        calls.append(event.data["n"])
        time.sleep(0.15)  # a full batch of two outlasts the visibility timeout

    consumer = Consumer(
        redis, [STREAM], "g", "c", {"*": slow}, batch=2, block_ms=10, visibility_timeout_ms=200
    )
    for _ in range(6):
        consumer.run_once(block_ms=10)
    consumer.flush()
    assert calls == [0, 1, 2, 3]
    assert redis.xpending(STREAM, "g")["pending"] == 0


def test_acknowledgements_held_back_survive_a_failed_read(redis) -> None:
    publish(redis, 4)
    calls: list[int] = []
    consumer = Consumer(
        redis, [STREAM], "g", "c", {"*": lambda e, d: calls.append(e.data["n"])}, batch=2
    )
    consumer.run_once(block_ms=10)  # a full batch: its acks wait for the next read
    held = list(consumer._deferred)
    assert held
    streams = consumer.streams
    consumer.streams = ["sb:events:not-a-group-here"]  # the next read fails (NOGROUP)
    with pytest.raises(Exception, match="NOGROUP"):
        consumer._read(consumer.streams, 10)
    consumer.streams = streams
    assert consumer._deferred == held  # still to be sent
    drain(consumer)
    assert calls == [0, 1, 2, 3]
    assert redis.xpending(STREAM, "g")["pending"] == 0
