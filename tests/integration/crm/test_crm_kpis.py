"""FCR and repeat-contact rate, folded from the CRM's own case events on a real Redis."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from services.crm import metrics
from services.crm.adapters import sql_tables
from shared.bus import Consumer
from shared.events import STREAMS
from shared.sql_outbox import relay_outbox


def case(client: FlaskClient, headers: Any, profile_id: str, channel: str, subject: str) -> Any:
    response = client.post(
        "/v1/cases",
        json={"profile_id": profile_id, "channel": channel, "subject": subject},
        headers=headers("channel"),
    )
    assert response.status_code in (200, 201), response.json
    return response.json


def resolve(client: FlaskClient, headers: Any, case_id: str) -> None:
    for status in ("open", "resolved"):
        response = client.patch(
            f"/v1/cases/{case_id}", json={"status": status}, headers=headers("agent")
        )
        assert response.status_code == 200, response.json


def project(app: Flask, redis: Any) -> None:
    relay_outbox(app.extensions["sb"]["engine"], sql_tables.outbox, redis, maxlen=10_000)
    consumer = Consumer(redis, [STREAMS["crm"]], metrics.GROUP, "t", metrics.handlers(redis))
    while consumer.run_once(block_ms=10):
        pass


def test_stats_count_repeat_contacts_and_first_contact_resolution(
    app: Flask, client: FlaskClient, headers: Any, redis: Any
) -> None:
    profile = client.post(
        "/v1/profiles",
        json={"identifiers": [{"type": "email", "value": "kpi@example.com"}]},
        headers=headers("channel"),
    ).json
    billing = case(client, headers, profile["id"], "chat", "I was charged twice on my bill")
    again = case(client, headers, profile["id"], "voice", "I was charged twice on my bill")
    assert again["merged"] is True  # the same problem raised on another channel
    parcel = case(client, headers, profile["id"], "chat", "my parcel never arrived")
    resolve(client, headers, billing["id"])
    resolve(client, headers, parcel["id"])
    project(app, redis)
    for _, fields in redis.xrange(STREAMS["crm"]):  # every event delivered twice
        redis.xadd(STREAMS["crm"], fields)
    project(app, redis)

    stats = client.get("/v1/stats", headers=headers("agent"))
    assert stats.status_code == 200
    body = stats.json
    assert body["contacts"] == 3 and body["cases_opened"] == 2
    assert body["repeat_contacts"] == 1 and body["repeat_contact_rate"] == round(1 / 3, 4)
    assert body["cases_resolved"] == 2 and body["first_contact_resolution"] == 0.5
    assert client.get("/v1/stats?window_seconds=5", headers=headers("agent")).status_code == 400
    assert client.get("/v1/stats", headers=headers("channel")).status_code == 403
