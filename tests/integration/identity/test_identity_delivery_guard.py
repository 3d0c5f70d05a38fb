"""The delivery fraud guard (API.md B): send pumping is refused before any provider call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from services.identity.app import create_app
from shared.config import Settings
from tests.integration.identity.conftest import Api, Gateway

UK = {"allowed_countries": {"sms": ["86", "44"], "voice": ["86", "44"], "email": "*"}}


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    # The per-destination throttle's 30 s cooldown would answer before the guard's limits.
    return create_app(
        make_settings(
            "identity",
            IDENTITY_KBA_ITERATIONS="1000",
            IDENTITY_THROTTLE_COOLDOWN="0",
            IDENTITY_THROTTLE_MAX="100",
        )
    )


def put_policy(api: Api, body: dict[str, Any]) -> Any:
    r = api.call("PUT", "/v1/admin/delivery-policy", "admin", json=body)
    assert r.status_code == 200, r.json
    return r.json


def outbox(api: Api) -> list[dict[str, Any]]:
    return api.call("GET", "/v1/dev/messages", "admin").json["items"]


def send(api: Api, cid: str, factor: str = "sms_otp", scope: str = "channel") -> Any:
    vid = api.start(cid, "chat").json["verification_id"]
    return api.call(
        "POST", f"/v1/verifications/{vid}/challenges", scope, json={"factor": factor}
    ), vid


def enrolled(api: Api, cid: str, number: str, factor: str = "sms_otp") -> None:
    r = api.enroll(cid, {"type": factor, "destination": number})
    assert r.status_code == 201, r.json


def refused(r: Any, status: int, reason: str) -> None:
    assert r.status_code == status, r.json
    assert r.json["reason"] == reason, r.json
    if status == 403:
        assert r.json["type"].endswith("/delivery-not-allowed")
    else:
        assert 1 <= int(r.headers["Retry-After"]) <= 3600
        assert r.json["retry_after"] == int(r.headers["Retry-After"])


def names(errors: dict[str, Any], parent: str = "") -> set[str]:
    """Every field an errors object names, nested (marshmallow) or dotted (the domain's)."""
    found = set()
    for key, value in errors.items():
        name = f"{parent}.{key}" if parent else str(key)
        found.add(name)
        if isinstance(value, dict):
            found |= names(value, name)
    return found


def events(redis: Any, type_: str) -> list[dict[str, Any]]:
    return [
        json.loads(f["data"]) for _, f in redis.xrange("sb:events:identity") if f["type"] == type_
    ]


def metric(api: Api, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(api.c.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# -- the policy ------------------------------------------------------------------------------
def test_the_default_policy_is_the_contracts(api: Api) -> None:
    r = api.call("GET", "/v1/admin/delivery-policy", "admin")
    assert r.status_code == 200
    assert r.json["allowed_countries"] == {"sms": ["86"], "voice": ["86"], "email": "*"}
    assert r.json["max_destinations_per_customer"] == 3
    assert r.json["limits"] == {
        "per_client_per_hour": 1000,
        "per_customer_per_hour": 10,
        "per_prefix_per_hour": 50,
    }
    assert r.json["block_line_types"] == ["premium_rate", "shared_cost", "voip"]
    assert r.json["blocks"] == []
    assert api.call("GET", "/v1/admin/delivery-policy", "channel").status_code == 403


def test_a_put_is_audited_with_before_and_after_and_published(api: Api, redis: Any) -> None:
    body = put_policy(api, {**UK, "limits": {"per_customer_per_hour": 4}})
    assert body["allowed_countries"]["sms"] == ["44", "86"]
    assert body["limits"]["per_customer_per_hour"] == 4
    assert body["limits"]["per_client_per_hour"] == 1000  # absent: the default
    assert api.call("GET", "/v1/admin/delivery-policy", "admin").json == body
    entry = api.call("GET", "/v1/admin/audit", "admin").json["items"][0]
    assert entry["who"] == "admin1" and entry["subject"] == "delivery-policy"
    assert entry["before"]["allowed_countries"]["sms"] == ["86"]
    assert entry["after"]["allowed_countries"]["sms"] == ["44", "86"]
    assert events(redis, "identity.delivery.policy_changed") == [{"changed_by": "admin1"}]
    assert put_policy(api, body) == body  # what GET answers can be PUT back


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allowed_countries": {"sms": ["+86"]}}, "allowed_countries.sms"),
        ({"allowed_countries": {"email": ["86"]}}, "allowed_countries.email"),
        ({"allowed_countries": {"sms": "any"}}, "allowed_countries.sms"),
        ({"max_destinations_per_customer": 0}, "max_destinations_per_customer"),
        ({"limits": {"per_prefix_per_hour": 0}}, "limits.per_prefix_per_hour"),
        ({"limits": {"per_prefix_per_hour": "50"}}, "limits.per_prefix_per_hour"),
        ({"block_line_types": ["premium"]}, "block_line_types.0"),
        ({"auto_block": {"min_conversion": 2}}, "auto_block.min_conversion"),
        ({"auto_block": {"grace_seconds": 600, "window_seconds": 300}}, "auto_block.grace_seconds"),
        ({"prefix_digits": 12}, "prefix_digits"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_an_invalid_policy_is_a_400_problem_and_changes_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = api.call("PUT", "/v1/admin/delivery-policy", "admin", json=body)
    assert r.status_code == 400, r.json
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert names(r.json["errors"]) & {field, field.rsplit(".", 1)[0]}, r.json
    assert (
        api.call("GET", "/v1/admin/delivery-policy", "admin").json["limits"]["per_prefix_per_hour"]
        == 50
    )
    assert api.call("GET", "/v1/admin/audit", "admin").json["items"] == []


def test_the_policy_is_in_the_openapi_document(client: Any) -> None:
    spec = client.get("/openapi.json").json
    assert "/v1/admin/delivery-policy" in spec["paths"]
    assert "DeliveryPolicy" in spec["components"]["schemas"]


# -- countries and line types ---------------------------------------------------------------
def test_a_country_outside_the_policy_is_refused_and_nothing_is_sent(api: Api) -> None:
    r = api.enroll("c-uk", {"type": "sms_otp", "destination": "+447911123456"})
    refused(r, 403, "country_not_allowed")
    assert api.call("GET", "/v1/customers/c-uk/factors").json["items"] == []
    # Enrolled while the UK was allowed, then no longer: the challenge sends nothing.
    put_policy(api, UK)
    enrolled(api, "c-uk", "+447911123456")
    put_policy(api, {})
    r, _ = send(api, "c-uk")
    refused(r, 403, "country_not_allowed")
    assert outbox(api) == []
    assert metric(api, "sb_identity_delivery_refusals_total", reason="country_not_allowed") == 2


def test_premium_rate_and_satellite_numbers_are_refused(api: Api) -> None:
    put_policy(api, UK)
    refused(
        api.enroll("c-1", {"type": "sms_otp", "destination": "+449098790000"}),
        403,
        "line_type_blocked",
    )
    # "*" is any country, never an international network or satellite service.
    put_policy(api, {"allowed_countries": {"sms": "*", "voice": "*"}})
    refused(
        api.enroll("c-2", {"type": "voice_otp", "destination": "+8821611111111"}),
        403,
        "country_not_allowed",
    )
    # Named, +882 16 is still a VoIP line, blocked by default.
    put_policy(api, {"allowed_countries": {"sms": ["882"]}})
    refused(
        api.enroll("c-2", {"type": "sms_otp", "destination": "+8821611111111"}),
        403,
        "line_type_blocked",
    )
    # Enrolled under a policy that allowed it: refused at the send, nothing goes out.
    put_policy(api, {**UK, "block_line_types": []})
    enrolled(api, "c-3", "+449098790000")
    put_policy(api, UK)
    r, _ = send(api, "c-3")
    refused(r, 403, "line_type_blocked")
    assert outbox(api) == []


def test_a_refusal_reaches_no_gateway(
    webhook_app: Callable[..., Flask], headers: Callable[[str], dict[str, str]], redis: Any
) -> None:
    api = Api(webhook_app().test_client(), headers)
    put_policy(api, UK)
    enrolled(api, "c-1", "+447911123456")
    put_policy(api, {})
    r, _ = send(api, "c-1")
    refused(r, 403, "country_not_allowed")
    assert Gateway.posts == 0


# -- destinations and velocity --------------------------------------------------------------
def test_a_customer_gets_codes_at_no_more_than_the_cap_of_destinations(api: Api) -> None:
    numbers = ["+8613800138001", "+8613800138002", "+8613800138003", "+8613800138004"]
    for n in numbers[:3]:
        enrolled(api, "c-1", n)
    enrolled(api, "c-1", numbers[0], "voice_otp")  # sms and voice to one number: one destination
    refused(
        api.enroll("c-1", {"type": "sms_otp", "destination": numbers[3]}),
        403,
        "too_many_destinations",
    )
    factors = api.call("GET", "/v1/customers/c-1/factors").json["items"]
    for f in factors:
        if f["type"] == "sms_otp":
            vid = api.start("c-1", "chat").json["verification_id"]
            assert api.challenge(vid, "sms_otp", factor_id=f["factor_id"]).status_code == 200
    # Removing one makes room to enroll another, not to send codes to a fourth number.
    api.call("DELETE", f"/v1/customers/c-1/factors/{factors[0]['factor_id']}")
    api.call("DELETE", f"/v1/customers/c-1/factors/{factors[3]['factor_id']}")
    enrolled(api, "c-1", numbers[3])
    sent = len(outbox(api))
    fid = api.call("GET", "/v1/customers/c-1/factors").json["items"][-1]["factor_id"]
    vid = api.start("c-1", "chat").json["verification_id"]
    refused(api.challenge(vid, "sms_otp", factor_id=fid), 403, "too_many_destinations")
    assert len(outbox(api)) == sent == 3


def test_codes_per_customer_per_hour(api: Api) -> None:
    put_policy(api, {"limits": {"per_customer_per_hour": 2}})
    enrolled(api, "c-1", "+8613800138000")
    assert [send(api, "c-1")[0].status_code for _ in range(2)] == [200, 200]
    refused(send(api, "c-1")[0], 429, "customer_rate")
    assert len(outbox(api)) == 2
    enrolled(api, "c-2", "+8613900139000")  # another customer is not held
    assert send(api, "c-2")[0].status_code == 200


def test_codes_per_api_client_per_hour(api: Api) -> None:
    put_policy(api, {"limits": {"per_client_per_hour": 3}})
    for i in range(5):
        enrolled(api, f"c-{i}", f"+86139001390{i:02d}")
    assert [send(api, f"c-{i}")[0].status_code for i in range(3)] == [200, 200, 200]
    refused(send(api, "c-3")[0], 429, "client_rate")
    assert send(api, "c-4", scope="all")[0].status_code == 200  # another API client
    assert len(outbox(api)) == 4


def test_codes_per_prefix_per_hour(api: Api) -> None:
    put_policy(api, {"limits": {"per_prefix_per_hour": 3}})
    for i in range(4):
        enrolled(api, f"c-{i}", f"+86138001380{i:02d}")
    enrolled(api, "c-other", "+8613900139000")
    assert [send(api, f"c-{i}")[0].status_code for i in range(3)] == [200, 200, 200]
    refused(send(api, "c-3")[0], 429, "prefix_rate")
    assert send(api, "c-other")[0].status_code == 200  # +86 13900 is another prefix
    assert len(outbox(api)) == 4
    assert metric(api, "sb_identity_delivery_refusals_total", reason="prefix_rate") == 1


# -- the attack ------------------------------------------------------------------------
def test_fifteen_fresh_customers_pumping_uk_numbers_get_nothing_by_default(api: Api) -> None:
    answers = [
        api.enroll(f"pump-{i}", {"type": "sms_otp", "destination": f"+4470000000{i:02d}"})
        for i in range(15)
    ]
    assert {r.status_code for r in answers} == {403}
    assert outbox(api) == []


def pump(api: Api, n: int) -> list[int]:
    codes = []
    for i in range(n):
        enrolled(api, f"pump-{i}", f"+4470000000{i:02d}")
        codes.append(send(api, f"pump-{i}")[0].status_code)
    return codes


def test_with_the_uk_allowed_the_prefix_limit_stops_the_pumping(api: Api) -> None:
    put_policy(api, {**UK, "limits": {"per_prefix_per_hour": 10}})
    assert pump(api, 15) == [200] * 10 + [429] * 5
    assert len(outbox(api)) == 10


def test_with_the_uk_allowed_the_auto_block_stops_the_pumping(api: Api, redis: Any) -> None:
    put_policy(api, {**UK, "auto_block": {"min_sends": 5, "grace_seconds": 0}})
    assert pump(api, 15) == [200] * 5 + [403] * 10
    assert len(outbox(api)) == 5
    blocked = events(redis, "identity.delivery.prefix_blocked")
    assert len(blocked) == 1 and blocked[0]["prefix"] == "+44-70000"
    assert blocked[0]["sends"] == 5 and blocked[0]["converted"] == 0
    assert "+4470000000" not in json.dumps(blocked)  # a prefix, never a number


# -- the automatic block -----------------------------------------------------------------------
AUTO = {"min_sends": 3, "min_conversion": 0.5, "grace_seconds": 0, "block_seconds": 1}


def test_a_prefix_whose_codes_are_not_entered_is_blocked_then_freed(api: Api, redis: Any) -> None:
    put_policy(api, {"auto_block": AUTO})
    for i in range(5):
        enrolled(api, f"c-{i}", f"+86138001380{i:02d}")
    assert [send(api, f"c-{i}")[0].status_code for i in range(3)] == [200, 200, 200]
    r, _ = send(api, "c-3")
    refused(r, 403, "prefix_blocked")
    assert int(r.headers["Retry-After"]) == 1
    assert [e["prefix"] for e in events(redis, "identity.delivery.prefix_blocked")] == ["+86-13800"]
    assert metric(api, "sb_identity_delivery_prefix_auto_blocks_total") == 1
    assert metric(api, "sb_identity_delivery_refusals_total", reason="prefix_blocked") == 1
    entry = api.call("GET", "/v1/admin/audit", "admin").json["items"][0]
    assert entry["who"] == "fraud-guard" and entry["after"]["prefix"] == "+86-13800"
    # The block ends on its own, and the prefix starts afresh.
    deadline = time.monotonic() + 30
    while (r := send(api, "c-4")[0]).status_code != 200:
        assert time.monotonic() < deadline, ("the block did not expire", r.json)
        time.sleep(0.2)  # polling pace: each try counts in the per-destination throttle
    assert api.call("GET", "/v1/admin/delivery-policy", "admin").json["blocks"] == []


def test_a_prefix_whose_codes_are_entered_stays_open(api: Api) -> None:
    put_policy(api, {"auto_block": {**AUTO, "min_conversion": 0.3}})
    for i in range(6):
        number = f"+86138001380{i:02d}"
        enrolled(api, f"c-{i}", number)
        r, vid = send(api, f"c-{i}")
        assert r.status_code == 200, r.json
        if i % 2 == 0:  # half of the codes are entered: never below 1 in 3
            ok = api.check(vid, "sms_otp", code=api.last_code(number))
            assert ok.status_code == 200, ok.json
    assert api.call("GET", "/v1/admin/delivery-blocks", "admin").json["items"] == []


def test_an_admin_lifts_a_block(api: Api) -> None:
    put_policy(api, {"auto_block": {**AUTO, "block_seconds": 3600}})
    for i in range(4):
        enrolled(api, f"c-{i}", f"+86138001380{i:02d}")
    assert [send(api, f"c-{i}")[0].status_code for i in range(4)] == [200, 200, 200, 403]
    blocks = api.call("GET", "/v1/admin/delivery-blocks", "admin").json["items"]
    assert [b["prefix"] for b in blocks] == ["+86-13800"]
    assert api.call("DELETE", "/v1/admin/delivery-blocks/+86-13800", "channel").status_code == 403
    assert api.call("DELETE", "/v1/admin/delivery-blocks/+86-13800", "admin").status_code == 204
    assert api.call("DELETE", "/v1/admin/delivery-blocks/+86-13800", "admin").status_code == 404
    assert send(api, "c-3")[0].status_code == 200
    entry = api.call("GET", "/v1/admin/audit", "admin").json["items"][0]
    assert entry["action"] == "delete" and entry["before"] == {"prefix": "+86-13800"}
