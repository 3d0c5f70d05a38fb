"""After an erasure, resolve with ``create`` gives the returning customer a fresh profile;
suppression still stops the erased identifiers being attached in passing."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from tests.integration.crm.test_crm_api import make_profile

Headers = Callable[[str], dict[str, str]]
PHONE = {"type": "phone", "value": "13800138000"}


def test_resolve_with_create_after_an_erasure_is_a_fresh_profile(
    client: FlaskClient, headers: Headers
) -> None:
    erased = make_profile(client, headers, name="Li Wei", identifiers=[PHONE])
    assert (
        client.delete(f"/v1/profiles/{erased['id']}", headers=headers("admin")).status_code == 204
    )
    channel = headers("channel")
    unasked = client.post("/v1/profiles/resolve", json={"identifiers": [PHONE]}, headers=channel)
    assert unasked.status_code == 404 and unasked.mimetype == "application/problem+json"
    fresh = client.post(
        "/v1/profiles/resolve", json={"identifiers": [PHONE], "create": True}, headers=channel
    )
    assert fresh.status_code == 201, fresh.json
    assert fresh.json["id"] != erased["id"] and fresh.json["name"] is None
    assert fresh.headers["Location"] == f"/v1/profiles/{fresh.json['id']}"
    timeline = client.get(f"/v1/profiles/{fresh.json['id']}/timeline", headers=headers("agent"))
    assert [i["kind"] for i in timeline.json["items"]] == ["profile.created"]
    gone = client.get(f"/v1/profiles/{erased['id']}", headers=headers("agent"))
    assert gone.status_code == 404


def test_an_erased_identifier_is_still_not_attached_to_another_profile(
    client: FlaskClient, headers: Headers
) -> None:
    erased = make_profile(client, headers, identifiers=[PHONE])
    other = make_profile(client, headers, identifiers=[{"type": "email", "value": "o@x.cn"}])
    client.delete(f"/v1/profiles/{erased['id']}", headers=headers("admin"))
    for create in (False, True):
        found = client.post(
            "/v1/profiles/resolve",
            json={"identifiers": [{"type": "email", "value": "o@x.cn"}, PHONE], "create": create},
            headers=headers("channel"),
        )
        assert found.status_code == 200 and found.json["id"] == other["id"]
        assert found.json["identifiers"] == [{"type": "email", "value": "o@x.cn"}]
