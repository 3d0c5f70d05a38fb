"""Bad input to identity is a 4xx problem document, never a 500: path ids that are not
ids this service minted, credentials checked before the body, document shapes, and
names with a trailing newline."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask

from services.identity.adapters.redis.keys import skey
from tests.integration.identity.conftest import CHROME, Api

ONE_FACTOR = {
    "min_factors": 1,
    "allowed_factors": ["kba", "document"],
    "require_possession": False,
}
UNKNOWN_VID = "v-" + "0" * 32
UNKNOWN_SID = "s-" + "0" * 32


def approved(api: Api, cid: str = "c-1") -> str:
    """A verification approved with kba on a browser: its hash, ``:sat`` set and ``:att``
    counter all exist in Redis."""
    assert api.tier("basic", ONE_FACTOR).status_code in (200, 201)
    assert api.enroll(cid, {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    vid = api.start(cid, "web", tier="basic", device=CHROME).json["verification_id"]
    assert api.check(vid, "kba", answers={"first_pet": "rex"}).json["status"] == "approved"
    return str(vid)


def problem(response: Any) -> dict[str, Any]:
    """The problem document without what differs per request."""
    assert response.mimetype == "application/problem+json", response.data
    return {k: v for k, v in response.json.items() if k not in ("instance", "request_id")}


# -- path and body ids ----------------------------------------------------------------
def test_a_verification_id_that_was_not_minted_is_the_404_of_an_unknown_one(api: Api) -> None:
    """``<vid>:att`` named the attempts counter (and ``:sat`` the satisfied set) of a real
    verification: HGETALL on it was a WRONGTYPE error, a 500."""
    vid = approved(api)
    kba = {"factor": "kba", "answers": {"first_pet": "rex"}}
    routes = [
        ("GET", "/v1/verifications/{}", None),
        ("POST", "/v1/verifications/{}/checks", kba),
        ("POST", "/v1/verifications/{}/challenges", {"factor": "kba"}),
    ]
    for method, path, body in routes:
        unknown = api.call(method, path.format(UNKNOWN_VID), json=body)
        assert unknown.status_code == 404, unknown.json
        for bad in (f"{vid}:att", f"{vid}:sat", f"{vid}%0A", vid.upper(), f"{vid}0"):
            r = api.call(method, path.format(bad), json=body)
            assert r.status_code == 404, (method, path, bad, r.json)
            assert problem(r) == problem(unknown)


def test_a_device_is_trusted_only_from_a_verification_id_that_was_minted(api: Api) -> None:
    vid = approved(api)
    url = "/v1/customers/c-1/devices"
    unknown = api.call("POST", url, json={"verification_id": UNKNOWN_VID})
    assert unknown.status_code == 404
    for bad in (f"{vid}:att", f"{vid}:sat", f"{vid}\n"):
        r = api.call("POST", url, json={"verification_id": bad})
        assert r.status_code == 404, (bad, r.json)
        assert problem(r) == problem(unknown)
    assert api.call("POST", url, json={"verification_id": vid}).status_code == 201


def test_a_session_id_that_was_not_minted_never_names_a_key(api: Api, redis: Any) -> None:
    """No key of another type sits under ``s:`` today; a sid of another shape must still
    not choose the key that is read (it was a WRONGTYPE 500 if one did)."""
    bad = UNKNOWN_SID + ":x"
    redis.hset(skey(bad), "a", "b")
    unknown = api.call("DELETE", f"/v1/sessions/{UNKNOWN_SID}", "agent")
    assert unknown.status_code == 404
    for sid in (bad, f"{UNKNOWN_SID}%0A"):
        r = api.call("DELETE", f"/v1/sessions/{sid}", "agent")
        assert r.status_code == 404, (sid, r.json)
        assert problem(r) == problem(unknown)


# -- credentials before the body ------------------------------------------------------
ROLES = ("admin", "channel", "ivr", "agent")
# Invalid for every query schema of the API (PageArgs, StatusArgs, DevMessagesArgs).
BAD_QUERY = {"limit": "x", "channel": "NOT A CHANNEL", "to": "x" * 300}
BAD_BODY = {"not_a_field": [1]}


def scoped_routes(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path, scopes) of every route behind ``require_scope``."""
    routes = []
    for rule in app.url_map.iter_rules():
        scopes = getattr(app.view_functions[rule.endpoint], "_sb_scopes", None)
        if not scopes:
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, path, tuple(scopes)))
    return routes


def test_every_route_checks_the_key_and_its_scope_before_the_input(api: Api, app: Flask) -> None:
    """No key is a 401 and a key without the scope a 403, whatever the body or the query:
    the input was validated first, so both were 400s."""
    routes = scoped_routes(app)
    assert len(routes) >= 25
    invalid = []
    for method, path, scopes in routes:
        request: dict[str, Any] = {"query_string": BAD_QUERY}
        if method in ("POST", "PUT"):
            request["json"] = BAD_BODY
        anonymous = api.c.open(path, method=method, **request)
        assert anonymous.status_code == 401, (method, path, anonymous.json)
        assert anonymous.mimetype == "application/problem+json"
        other = next((r for r in ROLES if r not in scopes), "none")
        forbidden = api.call(method, path, other, **request)
        assert forbidden.status_code == 403, (method, path, other, forbidden.json)
        if method != "DELETE" and api.call(method, path, scopes[0], **request).status_code == 400:
            invalid.append((method, path))
    # The input is invalid indeed: with the right key, each route that reads one says so.
    # 16 + PUT /v1/admin/delivery-policy + the webhooks' PUT and deliveries (issue 21)
    assert len(invalid) == 19, invalid


# -- documents -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "document",
    [
        '{"type": "passport", "number": ' + "[" * 1000 + '"X1"' + "]" * 1000 + "}",
        {"number": {"nested": "X1234561"}},
        {"number": "X1234561", "images": [["aGk="]]},
        {"number": "X1234561", "images": ["aGk="] * 11},
        {"number": "X" * 1025},
        '{"number": 18446744073709551616}',
        {"": "X1234561", "number": "X1234561"},
        {"k" * 41: "x", "number": "X1234561"},
        {f"k{i}": "x" for i in range(21)},
    ],
    ids=[
        "deep",
        "object",
        "nested-images",
        "many-images",
        "long-string",
        "huge-number",
        "empty-key",
        "long-key",
        "many-keys",
    ],
)
def test_a_document_of_another_shape_is_a_400(api: Api, document: dict[str, Any] | str) -> None:
    """A 1000-deep number reached the verifier, whose str() hit RecursionError: a 503.
    (Documents given as text are sent as written: no JSON encoder here writes them.)"""
    assert api.tier("basic", ONE_FACTOR).status_code in (200, 201)
    vid = api.start("c-1", "web", tier="basic").json["verification_id"]
    raw = document if isinstance(document, str) else json.dumps(document)
    body = '{"factor": "document", "document": ' + raw + "}"
    r = api.call(
        "POST", f"/v1/verifications/{vid}/challenges", data=body, content_type="application/json"
    )
    assert r.status_code == 400, r.json
    assert r.mimetype == "application/problem+json" and "document" in r.json["errors"]


def test_the_documented_document_shape_still_reaches_the_verifier(api: Api) -> None:
    assert api.tier("basic", ONE_FACTOR).status_code in (200, 201)
    vid = api.start("c-1", "web", tier="basic").json["verification_id"]
    document = {
        "type": "passport",
        "number": "X1234561",
        "country": "DE",
        "expires": None,
        "pages": 2,
        "images": ["aGVsbG8=", "d29ybGQ="],
    }
    r = api.challenge(vid, "document", document=document)
    assert r.status_code == 200, r.json
    assert r.json["status"] == "submitted"


# -- names with a trailing newline ---------------------------------------------------------
# ``$`` also matches before a final newline: "chat\\n" passed the channel pattern.
@pytest.mark.parametrize("field", ["channel", "tier"])
def test_a_verification_named_with_a_trailing_newline_is_refused(api: Api, field: str) -> None:
    start = {"customer_id": "c-1", "channel": "chat", field: "gold\n"}
    r = api.call("POST", "/v1/verifications", json=start)
    assert r.status_code == 400 and list(r.json["errors"]) == [field], r.json


def test_a_status_asked_for_a_channel_with_a_trailing_newline_is_refused(api: Api) -> None:
    r = api.call("GET", "/v1/customers/c-1/verification-status?channel=voice%0A", "ivr")
    assert r.status_code == 400 and list(r.json["errors"]) == ["channel"], r.json


def test_a_policy_channel_named_with_a_trailing_newline_is_refused(api: Api) -> None:
    r = api.tier("gold", {"min_factors": 1, "channels": {"voice\n": {"min_factors": 1}}})
    assert r.status_code == 400 and list(r.json["errors"]) == ["channels"], r.json
    ok = api.tier("gold", {"min_factors": 1, "channels": {"voice": {"min_factors": 1}}})
    assert ok.status_code == 201, ok.json


def test_a_tier_named_with_a_trailing_newline_is_refused(api: Api) -> None:
    """The path tier went to the domain's check as it came, which let "gold\\n" be stored."""
    r = api.tier("gold%0A", {"min_factors": 1})
    assert r.status_code == 400 and list(r.json["errors"]) == ["tier"], r.json
    tiers = [t["tier"] for t in api.call("GET", "/v1/admin/tiers", "admin").json["items"]]
    assert tiers == ["default"]


def test_a_knowledge_question_named_with_a_trailing_newline_is_refused(api: Api) -> None:
    r = api.enroll("c-1", {"type": "kba", "answers": {"first_pet\n": "Rex", "birth_city": "Oslo"}})
    assert r.status_code == 400, r.json
