"""Names and language tags match their whole pattern: ``$`` also matches before a final
newline, so "gold\\n" was stored as a tier and "en\\n" as a language."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

Headers = Callable[[str], dict[str, str]]
EMAIL = {"type": "email", "value": "li@example.com"}


@pytest.mark.parametrize(
    ("field", "value"), [("tier", "gold"), ("language", "en"), ("language", "en-GB")]
)
def test_a_profile_field_with_a_trailing_newline_is_refused(
    client: FlaskClient, headers: Headers, field: str, value: str
) -> None:
    body = {"identifiers": [EMAIL], field: value + "\n"}
    r = client.post("/v1/profiles", json=body, headers=headers("channel"))
    assert r.status_code == 400, r.json
    assert r.mimetype == "application/problem+json" and list(r.json["errors"]) == [field]
    ok = client.post("/v1/profiles", json={**body, field: value}, headers=headers("channel"))
    assert ok.status_code == 201 and ok.json[field] == value, ok.json


def test_a_search_by_tier_with_a_trailing_newline_is_refused(
    client: FlaskClient, headers: Headers
) -> None:
    r = client.get("/v1/profiles?tier=gold%0A", headers=headers("agent"))
    assert r.status_code == 400 and list(r.json["errors"]) == ["tier"], r.json
    assert client.get("/v1/profiles?tier=gold", headers=headers("agent")).status_code == 200


def test_a_case_channel_with_a_trailing_newline_is_refused(
    client: FlaskClient, headers: Headers
) -> None:
    profile = client.post("/v1/profiles", json={"identifiers": [EMAIL]}, headers=headers("channel"))
    case = {"profile_id": profile.json["id"], "channel": "chat\n", "subject": "card blocked"}
    r = client.post("/v1/cases", json=case, headers=headers("channel"))
    assert r.status_code == 400 and list(r.json["errors"]) == ["channel"], r.json
    ok = client.post("/v1/cases", json={**case, "channel": "chat"}, headers=headers("channel"))
    assert ok.status_code == 201, ok.json
