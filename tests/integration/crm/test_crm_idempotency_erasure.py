"""Erasing a profile forgets the stored response of its idempotent creation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from tests.redis_scan import redis_text

NAME, PHONE, EMAIL = "Ouyang Xiaoming", "+86 138 0013 8765", "xiaoming.ouyang@example.com"


def test_erasure_leaves_no_trace_of_an_idempotent_creation(
    client: FlaskClient, headers: Callable[[str], dict[str, str]], redis: Any
) -> None:
    body = {
        "name": NAME,
        "identifiers": [{"type": "phone", "value": PHONE}, {"type": "email", "value": EMAIL}],
    }
    h = {**headers("channel"), "Idempotency-Key": "create-xiaoming"}
    created = client.post("/v1/profiles", json=body, headers=h)
    assert created.status_code == 201, created.json
    replayed = client.post("/v1/profiles", json=body, headers=h)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json == created.json
    profile_id = created.json["id"]
    assert redis.exists(f"sb:idem:subject:{profile_id}")

    erased = client.delete(f"/v1/profiles/{profile_id}", headers=headers("admin"))
    assert erased.status_code == 204

    assert not list(redis.scan_iter("sb:idem:*"))
    text = redis_text(redis)
    for value in (NAME, PHONE, EMAIL, "13800138765", "+8613800138765"):
        assert value not in text
    # The key no longer replays the erased profile.
    again = client.post("/v1/profiles", json=body, headers=h)
    assert "Idempotent-Replayed" not in again.headers
    assert again.status_code == 201 and again.json["id"] != profile_id


def test_erasing_a_merge_source_forgets_the_merge_and_unmerge_answers(
    client: FlaskClient, headers: Callable[[str], dict[str, str]], redis: Any
) -> None:
    agent = headers("agent")
    survivor = client.post(
        "/v1/profiles",
        json={"name": "Survivor", "identifiers": [{"type": "phone", "value": "13900139000"}]},
        headers=headers("channel"),
    ).json
    source = client.post(
        "/v1/profiles",
        json={"name": NAME, "identifiers": [{"type": "email", "value": EMAIL}]},
        headers=headers("channel"),
    ).json
    merge = {"source_id": source["id"]}
    merge_h = {**agent, "Idempotency-Key": "merge-xiaoming"}
    merged = client.post(f"/v1/profiles/{survivor['id']}/merge", json=merge, headers=merge_h)
    assert merged.status_code == 200, merged.json
    unmerge = {"merge_id": merged.json["merge_id"]}
    unmerge_h = {**agent, "Idempotency-Key": "unmerge-xiaoming"}
    unmerged = client.post(
        f"/v1/profiles/{survivor['id']}/unmerge", json=unmerge, headers=unmerge_h
    )
    assert unmerged.status_code == 200, unmerged.json
    # Both answers carry the source's personal data, and both replay.
    assert EMAIL in merged.text and NAME in unmerged.text
    assert (
        client.post(
            f"/v1/profiles/{survivor['id']}/unmerge", json=unmerge, headers=unmerge_h
        ).headers.get("Idempotent-Replayed")
        == "true"
    )

    assert (
        client.delete(f"/v1/profiles/{source['id']}", headers=headers("admin")).status_code == 204
    )

    for path, body, h in (
        (f"/v1/profiles/{survivor['id']}/merge", merge, merge_h),
        (f"/v1/profiles/{survivor['id']}/unmerge", unmerge, unmerge_h),
    ):
        again = client.post(path, json=body, headers=h)
        assert "Idempotent-Replayed" not in again.headers, path
        assert NAME not in again.text and EMAIL not in again.text, path
