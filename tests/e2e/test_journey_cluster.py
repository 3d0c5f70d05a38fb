"""Scale-out proof: the cross-channel journey on a 3-master Redis Cluster, with two
gunicorn instances of every service (``SB_INSTANCES=2`` of scripts/run.py) and the
journey's calls alternating between them, as a load balancer would spread them."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from redis.cluster import RedisCluster

from scripts.journey import Endpoints, Journey
from shared.events import STREAMS
from shared.testing import Product, RedisClusterServers, free_port
from tests.conftest import API_KEYS, API_KEYS_ENV
from tests.e2e.product import redis_traces, sql_traces

SERVICES = ("identity", "crm", "routing")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def instance_ports() -> dict[str, int]:
    """A free port per service whose +100 (the second instance) is free as well."""
    ports: dict[str, int] = {}
    while len(ports) < len(SERVICES):
        port = free_port()
        if port + 100 < 65536 and _free(port + 100) and port not in ports.values():
            ports[SERVICES[len(ports)]] = port
    return ports


def second_instance(url: str) -> str:
    host, port = url.rsplit(":", 1)
    return f"{host}:{int(port) + 100}"


@dataclass
class AlternatingJourney(Journey):
    """Each call to a service goes to the other instance than its call before."""

    def __post_init__(self) -> None:
        self.served: Counter[tuple[str, int]] = Counter()
        bases = (getattr(self.endpoints, s) for s in SERVICES)
        self.twins = {base: second_instance(base) for base in bases}

    def _call(
        self, method: str, url: str, scope: str, expect: tuple[int, ...], **kwargs: Any
    ) -> Any:
        base = next(b for b in self.twins if url.startswith(b))
        instance = 1 + (self.served[base, 1] + self.served[base, 2]) % 2
        self.served[base, instance] += 1
        if instance == 2:
            url = self.twins[base] + url.removeprefix(base)
        return super()._call(method, url, scope, expect, **kwargs)


@pytest.fixture(scope="module")
def cluster(cluster_servers: RedisClusterServers) -> RedisClusterServers:
    return cluster_servers


@pytest.fixture(scope="module")
def product(
    cluster: RedisClusterServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Product, dict[str, str]]]:
    ports = instance_ports()
    env = {f"{s.upper()}_PORT": str(p) for s, p in ports.items()}
    env.update({"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true", "SB_INSTANCES": "2"})
    running = Product(
        Path(tmp_path_factory.mktemp("product-cluster")),
        API_KEYS_ENV,
        API_KEYS["admin"],
        extra_env=env,
    )
    yield running, {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    running.stop()


def test_the_journey_passes_on_a_cluster_across_two_instances_of_every_service(
    cluster: RedisClusterServers, product: tuple[Product, dict[str, str]]
) -> None:
    running, urls = product
    log = running.log_path.read_text()
    for url in urls.values():
        assert f"{second_instance(url)}   (instance 2)" in log
    lines: list[str] = []
    # Generous waits: twelve gunicorn workers, the consumers and a 3-node cluster share
    # 2 cores with whatever else runs; a slow machine must not read as a wrong product.
    with httpx.Client(timeout=30) as client:
        journey = AlternatingJourney(
            Endpoints(**urls, keys=API_KEYS), client, lines.append, poll_timeout=45
        )
        journey.prepare()
        facts = journey.run()
    assert facts["agent"] in journey.agents
    assert any("no second verification" in line for line in lines)
    for base in urls.values():  # both instances of every service answered calls
        assert journey.served[base, 1] > 0 and journey.served[base, 2] > 0
    customer = facts["customer_id"]
    # The state is on the cluster (the product's own standalone Redis stays empty) ...
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    approved = [
        f
        for _, f in client.xrange(STREAMS["identity"])
        if f["type"] == "identity.verification.approved" and customer in f["data"]
    ]
    nodes = {client.get_node_from_key(k).name for k in client.scan_iter(match="*")}
    client.close()
    assert len(approved) == 1 and len(nodes) == 3
    assert redis_lib.Redis.from_url(running.redis.url).dbsize() == 0

    # Erasure reaches every service through the events, on the cluster too.
    with httpx.Client(timeout=30) as client:
        AlternatingJourney(Endpoints(**urls, keys=API_KEYS), client, facts=facts).erase()
    personal = facts["secrets"]
    deadline = time.monotonic() + 45
    while True:
        traces: dict[str, list[str]] = {}
        for node in cluster.nodes:  # each master scanned for its own keys
            traces.update(redis_traces(node.url, [customer, *personal]))
        if all(key.startswith("stream:sb:events:") for key in traces):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(key.startswith("stream:sb:events:") for key in traces), traces
    assert all(hits == [customer] for hits in traces.values()), traces
    assert sql_traces(running.database_url, [customer, *personal]) == {}
