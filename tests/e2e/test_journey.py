"""The cross-channel journey end to end: three services under gunicorn with their
consumers and the dispatcher, on a real redis-server and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.journey import Endpoints, Journey
from tests.conftest import API_KEYS
from tests.e2e.product import Product


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = Product(Path(tmp_path_factory.mktemp("product")))
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
