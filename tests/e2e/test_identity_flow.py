"""Identity under gunicorn, driven over HTTP like a channel adapter and an IVR would."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest

from shared.bus import EventPublisher
from shared.events import STREAMS, Event
from shared.testing import ROOT, GunicornService
from tests.conftest import API_KEYS

H = {scope: {"Authorization": f"Bearer {secret}"} for scope, secret in API_KEYS.items()}
GOLD = {"min_factors": 2, "channels": {"voice": {"allowed_factors": ["voice_otp", "kba"]}}}
PHONE = "+8613800138000"


@pytest.fixture
def identity(base_env: dict[str, str], redis: Any) -> Iterator[httpx.Client]:
    """Identity under gunicorn on the test Redis (flushed by the `redis` fixture)."""
    env = {**base_env, "IDENTITY_KBA_ITERATIONS": "1000"}
    with GunicornService("services.identity.app:create_app()", env) as service:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            yield client


def enroll(client: httpx.Client, cid: str) -> pyotp.TOTP:
    r = client.post(f"/v1/customers/{cid}/factors", json={"type": "totp"}, headers=H["channel"])
    totp = pyotp.TOTP(r.json()["secret"])
    confirm = client.post(
        f"/v1/customers/{cid}/factors/{r.json()['factor_id']}/confirm",
        json={"code": totp.at(time.time() - 30)},
        headers=H["channel"],
    )
    assert confirm.status_code == 200
    for body in (
        {"type": "voice_otp", "destination": PHONE},
        {"type": "kba", "answers": {"first_pet": "Rex"}},
    ):
        assert (
            client.post(f"/v1/customers/{cid}/factors", json=body, headers=H["channel"]).status_code
            == 201
        )
    return totp


def test_two_factor_flow_reuse_on_another_channel_and_revocation(identity: httpx.Client) -> None:
    c = identity
    assert c.put("/v1/admin/tiers/gold", json=GOLD, headers=H["admin"]).status_code == 201
    totp = enroll(c, "c-1")
    start = c.post(
        "/v1/verifications",
        headers=H["channel"],
        json={"customer_id": "c-1", "channel": "chat", "tier": "gold"},
    )
    assert start.status_code == 201 and start.json()["status"] == "pending"
    vid = start.json()["verification_id"]
    one = c.post(
        f"/v1/verifications/{vid}/checks",
        headers=H["channel"],
        json={"factor": "totp", "code": totp.now()},
    ).json()
    assert one["status"] == "pending" and one["satisfied_factors"] == ["totp"]
    two = c.post(
        f"/v1/verifications/{vid}/checks",
        headers=H["channel"],
        json={"factor": "kba", "answers": {"first_pet": " rex "}},
    ).json()
    assert two["status"] == "approved"
    token = two["session_token"]

    # Offline check with the published key.
    jwks = c.get("/.well-known/jwks.json").json()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "sb-session+jwt" and header["kid"] == jwks["keys"][0]["kid"]

    # Reuse on the web channel: no challenge.
    web = c.post(
        "/v1/verifications",
        headers=H["channel"],
        json={"customer_id": "c-1", "channel": "web", "tier": "gold", "session_token": token},
    )
    assert web.status_code == 200 and web.json()["reused"] is True
    status = c.get(
        "/v1/customers/c-1/verification-status", params={"channel": "web"}, headers=H["ivr"]
    ).json()
    assert status["verified"] is True and status["level"] == "2"

    # Voice asks only for voice_otp.
    voice = c.post(
        "/v1/verifications",
        headers=H["channel"],
        json={"customer_id": "c-1", "channel": "voice", "tier": "gold", "session_token": token},
    ).json()
    assert voice["satisfied_factors"] == ["kba"] and voice["available_factors"] == ["voice_otp"]

    assert c.post("/v1/sessions/revoke", json={"token": token}, headers=H["ivr"]).status_code == 200
    assert c.post("/v1/sessions/introspect", json={"token": token}, headers=H["ivr"]).json() == {
        "active": False
    }
    again = c.post(
        "/v1/verifications",
        headers=H["channel"],
        json={"customer_id": "c-1", "channel": "web", "tier": "gold", "session_token": token},
    )
    assert again.status_code == 201 and again.json()["status"] == "pending"


def test_forged_tokens_are_not_active(identity: httpx.Client) -> None:
    c = identity
    totp = enroll(c, "c-2")
    vid = c.post(
        "/v1/verifications", headers=H["channel"], json={"customer_id": "c-2", "channel": "chat"}
    ).json()["verification_id"]
    r = c.post(
        f"/v1/verifications/{vid}/checks",
        headers=H["channel"],
        json={"factor": "totp", "code": totp.now()},
    ).json()
    assert r["status"] == "approved", r
    head, body, sig = r["session_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "sb-session+jwt"}).encode())
    forged = [
        f"{none.decode().rstrip('=')}.{body}.",
        f"{head}.{base64.urlsafe_b64encode(json.dumps({**claims, 'acr': '3'}).encode()).decode().rstrip('=')}.{sig}",  # noqa: E501
        f"{head}.{body}.{sig[:-4]}AAAA",
        "junk",
    ]
    for token in forged:
        answer = c.post("/v1/sessions/introspect", json={"token": token}, headers=H["ivr"])
        assert answer.json() == {"active": False}, token
    assert (
        c.post(
            "/v1/sessions/introspect", json={"token": r["session_token"]}, headers=H["ivr"]
        ).json()["active"]
        is True
    )


def test_the_consumer_process_erases_a_customer(
    identity: httpx.Client, base_env: dict[str, str], redis: Any
) -> None:
    c = identity
    enroll(c, "c-3")
    env = {**os.environ, **base_env, "PYTHONPATH": str(ROOT)}
    consumer = subprocess.Popen(
        [sys.executable, "-m", "services.identity.consumer"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        EventPublisher(redis, STREAMS["crm"]).publish(
            Event.new("crm.profile.erased", {"profile_id": "c-3"}, source="crm")
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            factors = c.get("/v1/customers/c-3/factors", headers=H["channel"]).json()["items"]
            if not factors:
                break
            time.sleep(0.1)
        assert factors == []
    finally:
        consumer.terminate()
        consumer.wait(15)
