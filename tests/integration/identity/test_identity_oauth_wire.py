"""API.md A "OAuth wire format": introspection and revocation as RFC 7662 / RFC 7009
clients call them (form bodies, HTTP Basic client authentication), tried with authlib
against the app served over real HTTP."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask
from werkzeug.serving import make_server

from shared.testing import auth
from tests.conftest import API_KEYS
from tests.integration.identity.conftest import Api

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=30)
    server.server_close()


def basic(client: str, secret: str) -> dict[str, str]:
    # RFC 6749 2.3.1: each part form-urlencoded, then base64 of "client:secret".
    pair = f"{quote(client, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def session_token(api: Api, cid: str = "c-oauth") -> str:
    _, totp = api.enroll_totp(cid)
    v = api.start(cid, "chat").json
    r = api.check(v["verification_id"], "totp", code=totp.now())
    assert r.json["status"] == "approved", r.json
    token: str = r.json["session_token"]
    return token


def oauth(client: str, scope_key: str) -> OAuth2Session:
    # authlib's default client authentication for these endpoints is client_secret_basic.
    return OAuth2Session(client, API_KEYS[scope_key])


def test_authlib_introspects_an_active_token_and_an_unknown_one(api: Api, base_url: str) -> None:
    token = session_token(api)
    with oauth("ivr1", "ivr") as client:
        r = client.introspect_token(f"{base_url}/v1/sessions/introspect", token=token)
        assert r.status_code == 200, r.text
        assert r.json()["active"] is True and r.json()["sub"] == "c-oauth"
        junk = client.introspect_token(
            f"{base_url}/v1/sessions/introspect", token="not-a-token", token_type_hint="foo"
        )
        assert junk.status_code == 200 and junk.json() == {"active": False}


def test_authlib_revokes_a_token_and_it_is_never_active_again(api: Api, base_url: str) -> None:
    token = session_token(api)
    with oauth("chan1", "channel") as client:
        r = client.revoke_token(
            f"{base_url}/v1/sessions/revoke", token=token, token_type_hint="access_token"
        )
        assert r.status_code == 200, r.text
        # RFC 7009 2.2: an unknown token is answered 200 as well.
        again = client.revoke_token(f"{base_url}/v1/sessions/revoke", token="never-issued")
        assert again.status_code == 200, again.text
    assert api.introspect(token).json == {"active": False}


def test_a_plain_form_post_with_basic_is_answered_as_json_is(api: Api, base_url: str) -> None:
    token = session_token(api)
    url = f"{base_url}/v1/sessions/introspect"
    form = httpx.post(url, data={"token": token}, headers=basic("ivr1", API_KEYS["ivr"]))
    assert form.status_code == 200 and form.headers["content-type"].startswith("application/json")
    as_json = httpx.post(url, json={"token": token}, headers=auth(API_KEYS["ivr"]))
    assert form.json() == as_json.json() and form.json()["active"] is True
    # Bearer with a form body is accepted too.
    bearer = httpx.post(url, data={"token": token}, headers=auth(API_KEYS["ivr"]))
    assert bearer.status_code == 200 and bearer.json()["active"] is True


@pytest.mark.parametrize(
    "credentials",
    [
        basic("ivr1", "wrong-secret"),
        basic("chan1", API_KEYS["ivr"]),  # the right secret under another client's name
        basic("", API_KEYS["ivr"]),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"ivr1:\xff").decode()},
        {"Authorization": "Basic"},
    ],
)
def test_wrong_basic_credentials_are_401_problems(base_url: str, credentials: Any) -> None:
    r = httpx.post(f"{base_url}/v1/sessions/introspect", data={"token": "x"}, headers=credentials)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert API_KEYS["ivr"] not in r.text and "wrong-secret" not in r.text  # never echoed


def test_basic_of_a_key_without_the_scope_is_403(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v1/sessions/introspect",
        data={"token": "x"},
        headers=basic("admin1", API_KEYS["admin"]),
    )
    assert r.status_code == 403 and r.json()["status"] == 403
    with oauth("ops1", "none") as client:
        r2 = client.revoke_token(f"{base_url}/v1/sessions/revoke", token="x")
        assert r2.status_code == 403, r2.text


@pytest.mark.parametrize(
    "body",
    [
        {"token": "x", "surprise": "1"},  # unknown fields are refused, as in JSON
        {},  # token is required
        {"token": "x" * 9000},  # too long
        {"token": "x", "device": "{}"},  # a device is a JSON object, not a form field
    ],
)
def test_bad_form_bodies_are_400_problems(base_url: str, body: dict[str, str]) -> None:
    for path in ("/v1/sessions/introspect", "/v1/sessions/revoke"):
        r = httpx.post(f"{base_url}{path}", data=body, headers=basic("root1", API_KEYS["all"]))
        assert r.status_code == 400, (path, body, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_other_bodies_stay_json_only(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v1/admin/tiers/x",
        content="min_factors=1",
        headers={**auth(API_KEYS["admin"]), "Content-Type": FORM},
    )
    assert r.status_code in (405, 415)
    tiers = httpx.put(
        f"{base_url}/v1/admin/tiers/x",
        content="min_factors=1",
        headers={**auth(API_KEYS["admin"]), "Content-Type": FORM},
    )
    assert tiers.status_code == 415, tiers.text
    start = httpx.post(
        f"{base_url}/v1/verifications",
        data={"customer_id": "c-1", "channel": "chat"},
        headers=basic("chan1", API_KEYS["channel"]),
    )
    assert start.status_code == 415, start.text


def test_the_openapi_document_offers_both_bodies(client: Any) -> None:
    doc = client.get("/openapi.json").json
    for path in ("/v1/sessions/introspect", "/v1/sessions/revoke"):
        content = doc["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", FORM}, content
        form = content[FORM]["schema"]
        ref = form["$ref"].rsplit("/", 1)[-1]
        assert set(doc["components"]["schemas"][ref]["properties"]) == {"token", "token_type_hint"}
