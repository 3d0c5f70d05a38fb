"""Idempotency records at rest: sealed, forgotten on erasure, and absent when they do not open."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from shared import idempotency
from shared.config import Settings
from tests.integration.shared.test_http_kernel import widget_app
from tests.redis_scan import redis_text


@pytest.fixture
def app(make_settings: Callable[..., Settings], redis: Any) -> Flask:
    return widget_app(make_settings("identity"), redis)


def idem_records(redis: Any) -> list[str]:
    return [k for k in redis.scan_iter("sb:idem:*") if not k.startswith("sb:idem:subject:")]


def test_a_stored_response_is_sealed_and_still_replays(app: Flask, headers, redis) -> None:
    client = app.test_client()
    h = {**headers("channel"), "Idempotency-Key": "sealed-1"}
    first = client.post("/v1/widgets", json={"name": "Zhang Wei-Secret"}, headers=h)
    assert first.status_code == 201
    assert "Zhang Wei-Secret" not in redis_text(redis)
    [key] = idem_records(redis)
    record = json.loads(redis.get(key))
    assert set(record) == {"state", "token", "sealed"}
    again = client.post("/v1/widgets", json={"name": "Zhang Wei-Secret"}, headers=h)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert redis.get("widgets") == "1"


def test_forget_deletes_the_records_of_a_subject_only(app: Flask, headers, redis) -> None:
    client = app.test_client()
    h = headers("channel")
    one = client.post("/v1/widgets", json={"name": "a"}, headers={**h, "Idempotency-Key": "f-1"})
    two = client.post("/v1/widgets", json={"name": "b"}, headers={**h, "Idempotency-Key": "f-2"})
    assert len(idem_records(redis)) == 2
    subject = one.get_json()["id"]
    assert redis.ttl(f"sb:idem:subject:{subject}") > 0
    assert idempotency.forget(redis, subject) == 1
    assert not redis.exists(f"sb:idem:subject:{subject}")
    assert len(idem_records(redis)) == 1
    # The forgotten key now runs afresh; the other still replays.
    again = client.post("/v1/widgets", json={"name": "a"}, headers={**h, "Idempotency-Key": "f-1"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != subject
    kept = client.post("/v1/widgets", json={"name": "b"}, headers={**h, "Idempotency-Key": "f-2"})
    assert kept.headers["Idempotent-Replayed"] == "true"
    assert kept.get_json() == two.get_json()


def test_a_record_sealed_under_a_rotated_key_counts_as_absent(
    make_settings: Callable[..., Settings], headers, redis
) -> None:
    h = {**headers("channel"), "Idempotency-Key": "rotated"}
    old = widget_app(make_settings("identity", SB_INTERNAL_API_KEY="old-key"), redis)
    first = old.test_client().post("/v1/widgets", json={"name": "a"}, headers=h)
    assert first.status_code == 201
    new = widget_app(make_settings("identity", SB_INTERNAL_API_KEY="new-key"), redis)
    second = new.test_client().post("/v1/widgets", json={"name": "a"}, headers=h)
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]
    # The fresh record is sealed under the new key and replays from now on.
    third = new.test_client().post("/v1/widgets", json={"name": "a"}, headers=h)
    assert third.headers["Idempotent-Replayed"] == "true"
    assert third.get_json() == second.get_json()


def test_a_damaged_record_counts_as_absent(app: Flask, headers, redis) -> None:
    client = app.test_client()
    h = {**headers("channel"), "Idempotency-Key": "damaged"}
    first = client.post("/v1/widgets", json={"name": "a"}, headers=h)
    [key] = idem_records(redis)
    record = json.loads(redis.get(key))
    redis.set(key, json.dumps({**record, "sealed": "bm90IGEgcmVjb3Jk"}))
    second = client.post("/v1/widgets", json={"name": "a"}, headers=h)
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]
