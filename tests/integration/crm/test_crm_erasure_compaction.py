"""An erasure asks for the files to be compacted (the CRM's database and the Redis
AOF, which held the customer's stored responses): through the ``Compactor`` port
that bootstrap wires, the API itself knowing no adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from services.crm.adapters.sql_compaction import JOB
from shared import compaction


def test_an_erasure_requests_both_compactions(
    client: FlaskClient, headers: Callable[[str], dict[str, str]], redis: Any
) -> None:
    created = client.post(
        "/v1/profiles",
        json={"identifiers": [{"type": "phone", "value": "13800138000"}]},
        headers=headers("channel"),
    )
    assert created.status_code == 201
    assert not compaction.pending(redis, JOB)
    assert not compaction.pending(redis, compaction.REDIS_JOB)

    erased = client.delete(f"/v1/profiles/{created.get_json()['id']}", headers=headers("admin"))

    assert erased.status_code == 204
    assert compaction.pending(redis, JOB)
    assert compaction.pending(redis, compaction.REDIS_JOB)
