"""The CRM's export and erasure across the real identity and routing services
(the whole product as `make run` starts it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEYS
from tests.e2e.product import Product, start_product


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    running = start_product(Path(tmp_path_factory.mktemp("crm-export")))
    yield running
    running.stop()


def call(method: str, url: str, scope: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEYS[scope]}"}
    return httpx.request(method, url, headers=headers, timeout=10, **kw)


def test_export_holds_every_service_and_erasure_empties_it(product: Product) -> None:
    crm, identity, routing = (product.urls[s] for s in ("crm", "identity", "routing"))
    profile = call(
        "POST",
        f"{crm}/v1/profiles/resolve",
        "channel",
        json={
            "identifiers": [{"type": "phone", "value": "13700137000"}],
            "create": True,
            "name": "Export Person",
        },
    ).json()
    customer = profile["id"]
    totp = call(
        "POST", f"{identity}/v1/customers/{customer}/factors", "channel", json={"type": "totp"}
    )
    assert totp.status_code == 201
    task = call(
        "POST",
        f"{routing}/v1/tasks",
        "channel",
        json={"channel": "chat", "customer_id": customer, "category": "basic"},
    )
    assert task.status_code == 201

    doc = call("GET", f"{crm}/v1/profiles/{customer}/export", "admin")
    assert doc.status_code == 200, doc.text
    body = doc.json()
    assert body["profile"]["name"] == "Export Person"
    assert set(body["services"]) == {"identity", "routing"}
    text = str(body["services"])
    assert totp.json()["factor_id"] in text and task.json()["task_id"] in text
    assert totp.json()["secret"] not in text  # secrets are masked

    assert call("DELETE", f"{crm}/v1/profiles/{customer}", "admin").status_code == 204
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = call("GET", f"{identity}/v1/customers/{customer}/export", "admin").json()
        if totp.json()["factor_id"] not in str(left):
            break
        time.sleep(0.2)
    assert totp.json()["factor_id"] not in str(left)
    assert call("GET", f"{crm}/v1/profiles/{customer}", "admin").status_code == 404
