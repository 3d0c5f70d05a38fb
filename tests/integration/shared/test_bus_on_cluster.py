"""The bus runs unchanged on a 3-master Redis Cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from shared.bus import Consumer, EventPublisher
from shared.events import Event, dead_stream
from shared.testing import RedisClusterServers


@pytest.fixture(scope="module")
def cluster(cluster_servers: RedisClusterServers) -> Iterator[RedisCluster]:
    client = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    yield client
    client.close()


def test_a_consumer_of_several_streams_handles_all_and_dead_letters_on_a_cluster(
    cluster: RedisCluster,
) -> None:
    streams = ["sb:events:identity", "sb:events:routing"]  # different slots
    assert len({cluster.keyslot(s) for s in streams}) == 2
    for stream in streams:
        EventPublisher(cluster, stream).publish_many(
            [Event.new("t.ok.done", {"n": i, "s": stream}, source="t") for i in range(50)]
            + [Event.new("t.poison.done", {}, source="t")]
        )
    seen: list[tuple[str, int]] = []

    def handle(event: Event, _delivery: object) -> None:
        if event.type == "t.poison.done":
            raise RuntimeError("no")
        seen.append((event.data["s"], event.data["n"]))

    consumer = Consumer(
        cluster,
        streams,
        "g",
        "c",
        {"*": handle},
        visibility_timeout_ms=20,
        max_deliveries=2,
        block_ms=20,
    )
    deadline = time.monotonic() + 60
    while consumer.stats.dead_lettered < 2 and time.monotonic() < deadline:
        consumer.run_once()
        time.sleep(0.02)
    assert sorted(seen) == sorted((s, i) for s in streams for i in range(50))
    assert [cluster.xlen(dead_stream(s)) for s in streams] == [1, 1]
