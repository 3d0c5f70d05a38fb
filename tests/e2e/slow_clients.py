"""The slow-client attack the e2e tests run: a verified customer whose status an IVR
polls while connections trickle their requests (shared/trickle.py), loopback only."""

from __future__ import annotations

import json
import time

import httpx
import pyotp

from shared.trickle import Poll, Trickle, poll
from tests.conftest import API_KEYS

__all__ = ["ATTACK_SECONDS", "attack", "verified_customer", "assert_status_answers"]

H = {scope: {"Authorization": f"Bearer {secret}"} for scope, secret in API_KEYS.items()}
ATTACK_SECONDS = 10.0
HEADERS, BODIES = 200, 20


def verified_customer(identity_url: str, cid: str) -> str:
    """Enroll ``cid`` with TOTP and verify it on chat; its session id."""
    with httpx.Client(base_url=identity_url, timeout=30) as c:
        r = c.post(f"/v1/customers/{cid}/factors", json={"type": "totp"}, headers=H["channel"])
        assert r.status_code == 201, r.text
        totp = pyotp.TOTP(r.json()["secret"])
        confirm = c.post(
            f"/v1/customers/{cid}/factors/{r.json()['factor_id']}/confirm",
            json={"code": totp.at(time.time() - 30)},
            headers=H["channel"],
        )
        assert confirm.status_code == 200, confirm.text
        v = c.post(
            "/v1/verifications", json={"customer_id": cid, "channel": "chat"}, headers=H["channel"]
        )
        assert v.status_code == 201, v.text
        check = c.post(
            f"/v1/verifications/{v.json()['verification_id']}/checks",
            json={"factor": "totp", "code": totp.now()},
            headers=H["channel"],
        )
        assert check.json()["status"] == "approved", check.text
        status = c.get(
            f"/v1/customers/{cid}/verification-status", params={"channel": "chat"}, headers=H["ivr"]
        )
        assert status.json()["verified"] is True, status.text
        return str(status.json()["sid"])


def attack(port: int, url: str, headers: int = HEADERS, bodies: int = BODIES) -> list[Poll]:
    """Poll ``url`` (as the IVR, over a fresh connection each time, 2 s timeout) for
    ATTACK_SECONDS while ``headers`` + ``bodies`` connections to ``port`` trickle; every
    attacking socket is closed on return."""
    trickle = Trickle("127.0.0.1", port, headers=headers, bodies=bodies, body_headers=H["ivr"])
    try:
        trickle.start()
        polls = poll(url, H["ivr"], ATTACK_SECONDS, timeout=2.0)
        # The attack held for the whole polling: every attacker still connected.
        assert trickle.open == headers + bodies
    finally:
        trickle.stop()
    assert trickle.open == 0
    return polls


def assert_status_answers(polls: list[Poll], sid: str) -> None:
    """Every poll answered 200 with the customer's verified session, none timed out."""
    assert len(polls) >= 5, polls
    failed = [p for p in polls if p.status != 200]
    assert not failed, f"{len(failed)} of {len(polls)} polls unanswered or failed: {failed[:3]}"
    for p in polls:
        body = json.loads(p.body)
        assert body["verified"] is True and body["sid"] == sid, body
