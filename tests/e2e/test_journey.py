"""The cross-channel journey end to end: three services under gunicorn with their
consumers and the dispatcher, on a real redis-server and SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.journey import Endpoints, Journey
from tests.conftest import API_KEYS
from tests.e2e.product import Product, redis_traces, sql_traces, start_product


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = start_product(Path(tmp_path_factory.mktemp("product")))
    yield running
    running.stop()


def test_a_customer_verified_on_chat_is_not_asked_again_on_the_phone(product: Product) -> None:
    lines: list[str] = []
    with httpx.Client(timeout=10) as client:
        journey = Journey(Endpoints(**product.urls, keys=API_KEYS), client, lines.append)
        journey.prepare()
        facts = journey.run()
    assert facts["agent"] in journey.agents
    assert any("no second verification" in line for line in lines)

    # Erasure: every service forgets the customer.
    with httpx.Client(timeout=10) as client:
        Journey(Endpoints(**product.urls, keys=API_KEYS), client, facts=facts).erase()
    customer = facts["customer_id"]
    personal = facts["secrets"]  # phone, e-mail, name, the case's subject
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        traces = redis_traces(product.redis.url, [customer, *personal])
        if all(key.startswith("stream:sb:events:") for key in traces):
            break
        time.sleep(0.2)
    # Only the append-only event log still holds the opaque id (never personal data);
    # its entries age out with the streams' trimming.
    assert all(key.startswith("stream:sb:events:") for key in traces), traces
    assert all(hits == [customer] for hits in traces.values()), traces
    assert sql_traces(product.database_url, [customer, *personal]) == {}
