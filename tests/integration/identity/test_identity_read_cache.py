"""Token and status checks served from the tracked read cache stay exact across replicas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from services.identity.app import create_app
from shared.config import Settings
from tests.integration.identity.conftest import Api


@pytest.fixture
def replicas(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]]
) -> tuple[Api, Api, Flask]:
    """Two app instances on one Redis, as two gunicorn workers or two hosts would be."""
    a = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000"))
    b = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000"))
    return Api(a.test_client(), headers), Api(b.test_client(), headers), b


def approved(api: Api, cid: str, channel: str = "chat") -> dict[str, Any]:
    _, totp = api.enroll_totp(cid)
    v = api.start(cid, channel).json
    r = api.check(v["verification_id"], "totp", code=totp.now())
    assert r.json["status"] == "approved", r.json
    return r.json


def status(api: Api, cid: str, channel: str = "voice") -> dict[str, Any]:
    r = api.call("GET", f"/v1/customers/{cid}/verification-status?channel={channel}", "ivr")
    assert r.status_code == 200, r.json
    return r.json


def test_a_revocation_on_one_replica_is_seen_at_once_on_another(
    replicas: tuple[Api, Api, Flask],
) -> None:
    a, b, b_app = replicas
    token = approved(a, "c-rev")["session_token"]
    for _ in range(3):  # the second and third answers come from b's cache
        assert b.introspect(token).json["active"] is True
    assert status(b, "c-rev", "chat")["verified"] is True
    cache = b_app.extensions["sb"].extras["identity"].store.cache
    assert cache is not None and cache.hits > 0

    assert a.call("POST", "/v1/sessions/revoke", json={"token": token}).status_code == 200
    assert b.introspect(token).json == {"active": False}
    assert status(b, "c-rev", "chat")["verified"] is False


def test_a_new_session_and_a_policy_change_are_seen_by_a_replica_that_cached_the_old_state(
    replicas: tuple[Api, Api, Flask],
) -> None:
    a, b, _ = replicas
    assert status(b, "c-new", "chat")["verified"] is False  # cached: no sessions
    approved(a, "c-new")
    assert status(b, "c-new", "chat")["verified"] is True
    # A stricter tier for chat, set through replica a, applies on b's next answer.
    policy = {"min_factors": 2, "require_possession": True, "max_attempts": 5}
    assert a.tier("default", policy).status_code in (200, 201)
    assert status(b, "c-new", "chat")["verified"] is False


def test_revoking_every_session_of_a_customer_is_seen_at_once(
    replicas: tuple[Api, Api, Flask],
) -> None:
    a, b, _ = replicas
    first = approved(a, "c-all")["session_token"]
    assert b.introspect(first).json["active"] is True
    r = a.call("POST", "/v1/customers/c-all/sessions/revoke-all", "admin")
    assert r.status_code == 200 and r.json["revoked"] >= 1
    assert b.introspect(first).json == {"active": False}
    assert status(b, "c-all", "chat")["verified"] is False


def test_the_cache_can_be_switched_off(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings("identity", IDENTITY_READ_CACHE_KEYS="0"))
    assert app.extensions["sb"].extras["identity"].store.cache is None


def test_hits_and_misses_are_on_metrics(replicas: tuple[Api, Api, Flask]) -> None:
    a, b, b_app = replicas
    token = approved(a, "c-metrics")["session_token"]
    for _ in range(3):
        assert b.introspect(token).json["active"] is True
    text = b_app.test_client().get("/metrics").get_data(as_text=True)
    found = {
        line.split('result="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sb_read_cache_total{")
    }
    assert found["miss"] >= 1 and found["hit"] >= 2
