"""Event bus throughput and latency beside raw redis-py, measured in the same run.

- publish: EventPublisher.publish_many (batches of 100) vs raw XADD pipelined x100
- consume: Consumer.run_once with a no-op handler vs raw XREADGROUP x100 + one XACK
- end to end: events offered at a fixed 1,000/s, published one by one, consumed by
  a Consumer blocking on the stream; latency = handled - published.

Targets: publish and consume >= 50% of raw; end-to-end p99 <= 5 ms at 1,000/s.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from bench.common import RedisServer, machine, percentile, print_table  # noqa: E402
from shared.bus import Consumer, EventPublisher  # noqa: E402
from shared.events import Event  # noqa: E402

N = 50_000
ROUNDS = 3
BATCH = 100


def sample_fields(i: int) -> dict[str, str]:
    return Event.new(
        "bench.thing.happened", {"n": i, "customer_id": "c-1"}, source="bench"
    ).to_fields()


def raw_publish(r: redis_lib.Redis, stream: str) -> float:
    fields = [sample_fields(i) for i in range(N)]  # envelope built outside the timing
    started = time.perf_counter()
    for i in range(0, N, BATCH):
        pipe = r.pipeline(transaction=False)
        for f in fields[i : i + BATCH]:
            pipe.xadd(stream, f, maxlen=1_000_000, approximate=True)
        pipe.execute()
    return N / (time.perf_counter() - started)


def bus_publish(r: redis_lib.Redis, stream: str) -> float:
    publisher = EventPublisher(r, stream, maxlen=1_000_000)
    started = time.perf_counter()
    for i in range(0, N, BATCH):
        publisher.publish_many(
            [
                Event.new("bench.thing.happened", {"n": j, "customer_id": "c-1"}, source="bench")
                for j in range(i, i + BATCH)
            ]
        )
    return N / (time.perf_counter() - started)


def raw_consume(r: redis_lib.Redis, stream: str) -> float:
    r.xgroup_create(stream, "raw", id="0")
    done = 0
    started = time.perf_counter()
    while done < N:
        reply = r.xreadgroup("raw", "c", {stream: ">"}, count=BATCH)
        entries = reply[0][1]
        r.xack(stream, "raw", *[eid for eid, _ in entries])
        done += len(entries)
    return N / (time.perf_counter() - started)


def bus_consume(r: redis_lib.Redis, stream: str) -> float:
    consumer = Consumer(r, [stream], "bus", "c", {"*": lambda e, d: None}, batch=BATCH)
    consumer.ensure_groups()
    done = 0
    started = time.perf_counter()
    while done < N:
        done += consumer.run_once(block_ms=0)
    return N / (time.perf_counter() - started)


def end_to_end(
    r: redis_lib.Redis, url: str, stream: str, rate: int = 1000, seconds: float = 10.0
) -> tuple[float, float, int]:
    publisher = EventPublisher(r, stream)
    latencies: list[float] = []
    total = int(rate * seconds)
    stop = threading.Event()

    def handle(event: Event, _delivery: object) -> None:
        latencies.append(time.time() - event.data["sent"])
        if len(latencies) >= total:
            stop.set()

    # Its own connection, as a consumer process would have.
    own = redis_lib.Redis.from_url(url, decode_responses=True)
    consumer = Consumer(own, [stream], "e2e", "c", {"*": handle}, block_ms=100)
    consumer.ensure_groups()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for i in range(total):
        next_at += interval
        publisher.publish(Event.new("bench.latency", {"sent": time.time(), "n": i}, source="bench"))
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    stop.wait(10)
    stop.set()
    thread.join()
    ms = [x * 1000 for x in latencies]
    return percentile(ms, 50), percentile(ms, 99), len(ms)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(tmp) as server:
        r = redis_lib.Redis.from_url(server.url, decode_responses=True)
        # Interleaved rounds, best of each: the two sides see the same machine noise.
        rounds = [
            (
                raw_publish(r, f"raw{i}"),
                bus_publish(r, f"bus{i}"),
                raw_consume(r, f"raw{i}"),
                bus_consume(r, f"bus{i}"),
            )
            for i in range(ROUNDS)
        ]
        raw_pub, bus_pub, raw_con, bus_con = (max(col) for col in zip(*rounds, strict=True))
        p50, p99, handled = end_to_end(r, server.url, "bench:e2e")
    print(f"machine: {machine()}\n")
    print_table(
        "Event bus (events/s, best of 3 rounds of 50,000 events, batches of 100)",
        ["measure", "raw redis-py", "switchboard bus", "ratio", "target"],
        [
            ["publish", raw_pub, bus_pub, f"{bus_pub / raw_pub:.0%}", ">= 50%"],
            ["consume", raw_con, bus_con, f"{bus_con / raw_con:.0%}", ">= 50%"],
        ],
    )
    print_table(
        "End to end at a fixed 1,000 events/s for 10 s",
        ["events handled", "p50 ms", "p99 ms", "target"],
        [[handled, p50, p99, "p99 <= 5 ms"]],
    )


if __name__ == "__main__":
    main()
