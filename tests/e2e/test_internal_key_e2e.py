"""An operator's `API_KEYS` without the CRM's internal key (set apart in
`SB_INTERNAL_API_KEY`, as docker-compose asks for it): the CRM's export still gathers
from identity and routing (it answered 503 "the identity service answered 401")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.testing import Product
from tests.conftest import API_KEYS, API_KEYS_ENV

INTERNAL = "operator-internal-key-not-in-api-keys"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    assert INTERNAL not in API_KEYS_ENV
    running = Product(Path(tmp_path_factory.mktemp("internal-key")), API_KEYS_ENV, INTERNAL)
    yield running
    running.stop()


def call(method: str, url: str, scope: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_KEYS[scope]}"}
    return httpx.request(method, url, headers=headers, timeout=10, **kw)


def test_the_crm_export_gathers_from_identity_and_routing(product: Product) -> None:
    crm, identity, routing = (product.urls[s] for s in ("crm", "identity", "routing"))
    profile = call(
        "POST",
        f"{crm}/v1/profiles/resolve",
        "channel",
        json={"identifiers": [{"type": "phone", "value": "13700137001"}], "create": True},
    ).json()
    customer = profile["id"]
    factor = call(
        "POST", f"{identity}/v1/customers/{customer}/factors", "channel", json={"type": "totp"}
    )
    task = call(
        "POST",
        f"{routing}/v1/tasks",
        "channel",
        json={"channel": "chat", "customer_id": customer, "category": "basic"},
    )
    assert factor.status_code == 201 and task.status_code == 201

    doc = call("GET", f"{crm}/v1/profiles/{customer}/export", "admin")

    assert doc.status_code == 200, doc.text
    services = doc.json()["services"]
    assert set(services) == {"identity", "routing"}
    assert factor.json()["factor_id"] in str(services["identity"])
    assert task.json()["task_id"] in str(services["routing"])
