"""Devices over HTTP: fingerprints, trusting and untrusting, the trust window, their events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.identity.app import create_app
from services.identity.bootstrap import Wiring
from shared.config import Settings
from tests.integration.identity.conftest import CHROME, Api

ONE_FACTOR = {
    "min_factors": 1,
    "allowed_factors": ["kba", "totp", "trusted_device"],
    "require_possession": False,
    "trusted_device_days": 2,
}
ANSWERS = {"first_pet": "Rex"}
CHROME_121 = {
    **CHROME,
    "user_agent": CHROME["user_agent"].replace("Chrome/120", "Chrome/121"),
    "ip": "203.0.113.200",
}


def events(redis: Any, type_: str) -> list[dict[str, Any]]:
    return [
        json.loads(f["data"]) for _, f in redis.xrange("sb:events:identity") if f["type"] == type_
    ]


def approved_on(api: Api, cid: str, device: dict[str, Any]) -> str:
    """A verification of ``cid`` approved with kba on ``device``; its id."""
    assert api.tier("basic", ONE_FACTOR).status_code in (200, 201)
    if not api.call("GET", f"/v1/customers/{cid}/factors").json["items"]:
        assert api.enroll(cid, {"type": "kba", "answers": ANSWERS}).status_code == 201
    vid = api.start(cid, "web", tier="basic", device=device).json["verification_id"]
    assert api.check(vid, "kba", answers={"first_pet": "rex"}).json["status"] == "approved"
    return vid


def satisfied_on(api: Api, cid: str, device: dict[str, Any]) -> list[str]:
    """What a fresh verification on ``device`` starts with (sessions revoked first)."""
    api.call("POST", f"/v1/customers/{cid}/sessions/revoke-all", "admin")
    r = api.start(cid, "web", tier="basic", device=device)
    assert r.status_code in (200, 201), r.json
    return r.json["satisfied_factors"]


def fingerprint(api: Api, device: dict[str, Any]) -> dict[str, Any]:
    r = api.call("POST", "/v1/devices/fingerprint", json={"device": device})
    assert r.status_code == 200, r.json
    return r.json


def test_a_fingerprint_survives_a_browser_update_but_not_another_platform(api: Api) -> None:
    chrome = fingerprint(api, CHROME)
    assert len(chrome["fingerprint"]) == 64 and int(chrome["fingerprint"], 16) >= 0
    assert {"kind=browser", "ua_family=chrome", "ua_major=120", "platform=win32"} <= set(
        chrome["components"]
    )
    assert "ip_prefix=203.0.113.0/24" in chrome["components"]
    updated = fingerprint(api, CHROME_121)
    assert updated["fingerprint"] == chrome["fingerprint"]
    assert "ua_major=121" in updated["components"]
    mac = fingerprint(api, {**CHROME, "platform": "MacIntel"})
    assert mac["fingerprint"] != chrome["fingerprint"] and "platform=macintel" in mac["components"]
    assert fingerprint(api, CHROME)["fingerprint"] == chrome["fingerprint"]  # deterministic


def test_the_fingerprint_is_keyed_with_the_server_secret(
    api: Api, make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]]
) -> None:
    other = create_app(make_settings("identity", IDENTITY_FINGERPRINT_KEY="another-server-key"))
    elsewhere = fingerprint(Api(other.test_client(), headers), CHROME)
    here = fingerprint(api, CHROME)
    assert elsewhere["components"] == here["components"]
    assert elsewhere["fingerprint"] != here["fingerprint"]


def test_fingerprinting_needs_the_channel_scope(api: Api) -> None:
    r = api.call("POST", "/v1/devices/fingerprint", "none", json={"device": CHROME})
    assert r.status_code == 403


def test_trusting_and_untrusting_a_device_are_listed_and_published(api: Api, redis: Any) -> None:
    vid = approved_on(api, "c-1", CHROME)
    assert api.call("GET", "/v1/customers/c-1/devices").json["items"] == []
    trusted = api.call("POST", "/v1/customers/c-1/devices", json={"verification_id": vid})
    assert trusted.status_code == 201, trusted.json
    device = trusted.json
    assert device["fingerprint"] == fingerprint(api, CHROME)["fingerprint"]
    assert device["kind"] == "browser" and device["flagged"] is False
    listed = api.call("GET", "/v1/customers/c-1/devices").json["items"]
    assert [d["device_id"] for d in listed] == [device["device_id"]]
    assert listed[0]["fingerprint"] == device["fingerprint"]
    assert events(redis, "identity.device.trusted") == [
        {"customer_id": "c-1", "device_id": device["device_id"]}
    ]
    assert "trusted_device" in satisfied_on(api, "c-1", CHROME_121)

    gone = api.call("DELETE", f"/v1/customers/c-1/devices/{device['device_id']}")
    assert gone.status_code == 204
    assert api.call("GET", "/v1/customers/c-1/devices").json["items"] == []
    assert events(redis, "identity.device.untrusted") == [
        {"customer_id": "c-1", "device_id": device["device_id"]}
    ]
    assert "trusted_device" not in satisfied_on(api, "c-1", CHROME)
    again = api.call("DELETE", f"/v1/customers/c-1/devices/{device['device_id']}")
    assert again.status_code == 404
    assert len(events(redis, "identity.device.untrusted")) == 1


def test_only_an_approved_verification_of_the_same_customer_trusts_a_device(api: Api) -> None:
    vid = approved_on(api, "c-1", CHROME)
    other = api.call("POST", "/v1/customers/c-2/devices", json={"verification_id": vid})
    assert other.status_code == 404
    pending = api.start("c-1", "chat", tier="basic", device={**CHROME, "platform": "MacIntel"})
    r = api.call(
        "POST",
        "/v1/customers/c-1/devices",
        json={"verification_id": pending.json["verification_id"]},
    )
    assert r.status_code == 409
    assert api.call("GET", "/v1/customers/c-2/devices").json["items"] == []


def test_removing_a_factor_is_published(api: Api, redis: Any) -> None:
    assert api.enroll("c-1", {"type": "kba", "answers": ANSWERS}).status_code == 201
    sms = api.enroll("c-1", {"type": "sms_otp", "destination": "+8613800138000"}).json
    assert api.call("DELETE", f"/v1/customers/c-1/factors/{sms['factor_id']}").status_code == 204
    assert events(redis, "identity.factor.removed") == [
        {"customer_id": "c-1", "factor_id": sms["factor_id"], "type": "sms_otp"}
    ]
    left = api.call("GET", "/v1/customers/c-1/factors").json["items"]
    assert [f["type"] for f in left] == ["kba"]
    assert api.call("DELETE", f"/v1/customers/c-1/factors/{sms['factor_id']}").status_code == 404
    assert len(events(redis, "identity.factor.removed")) == 1


def test_a_device_trusted_longer_ago_than_trusted_device_days_no_longer_counts(
    api: Api, service: Wiring
) -> None:
    vid = approved_on(api, "c-1", CHROME)
    device = api.call("POST", "/v1/customers/c-1/devices", json={"verification_id": vid}).json
    trusted_at = datetime.fromisoformat(device["trusted_at"]).timestamp()
    expires_at = datetime.fromisoformat(device["expires_at"]).timestamp()
    assert expires_at - trusted_at == 2 * 86400  # the tier's trusted_device_days
    days = ONE_FACTOR["trusted_device_days"] * 86400
    service.clock = lambda: time.time() + days - 120
    assert "trusted_device" in satisfied_on(api, "c-1", CHROME)
    service.clock = lambda: time.time() + days + 120
    assert "trusted_device" not in satisfied_on(api, "c-1", CHROME)
    # A longer window in the policy brings the same device back.
    api.tier("basic", {**ONE_FACTOR, "trusted_device_days": 3})
    assert "trusted_device" in satisfied_on(api, "c-1", CHROME)


def test_the_device_listing_shows_the_trust_window_of_the_tier_it_was_trusted_under(
    api: Api,
) -> None:
    vid = approved_on(api, "c-1", CHROME)
    posted = api.call("POST", "/v1/customers/c-1/devices", json={"verification_id": vid}).json
    (listed,) = api.call("GET", "/v1/customers/c-1/devices").json["items"]
    assert listed["expires_at"] == posted["expires_at"]
