"""Slow clients against the services as `make run` serves them (shared/serving.py's
worker settings, no proxy): 200 connections trickling headers and 20 trickling a
body must not keep the IVR's verification-status from answering."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.product import Product, start_product
from tests.e2e.slow_clients import assert_status_answers, attack, verified_customer


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = start_product(tmp_path_factory.mktemp("slow"), workers=None)  # as shipped
    try:
        yield running
    finally:
        running.stop()


def test_verification_status_answers_while_200_connections_trickle_headers_and_bodies(
    product: Product,
) -> None:
    sid = verified_customer(product.urls["identity"], "c-slow-1")
    url = product.urls["identity"] + "/v1/customers/c-slow-1/verification-status?channel=chat"
    polls = attack(product.ports["identity"], url)
    assert_status_answers(polls, sid)


@pytest.mark.parametrize("service", ["crm", "routing"])
def test_crm_and_routing_answer_while_200_connections_trickle(
    product: Product, service: str
) -> None:
    polls = attack(product.ports[service], product.urls[service] + "/readyz", bodies=0)
    assert len(polls) >= 5
    assert all(p.status == 200 for p in polls), [p for p in polls if p.status != 200][:3]
