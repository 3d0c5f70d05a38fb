"""The delivery fraud guard's pure rules (domain/delivery_policy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.identity.adapters.destinations import describe
from services.identity.domain.delivery_policy import (
    DEFAULT_DELIVERY_POLICY,
    Destination,
    Usage,
    decide,
    parse_delivery_policy,
    screen,
    should_block,
)
from services.identity.domain.errors import DeliveryPolicyInvalid

KEY = b"k" * 32


def facts(number: str, channel: str = "sms") -> Destination:
    return describe(KEY, channel, number, 5)


def test_the_defaults_are_the_contracts_and_round_trip() -> None:
    d = DEFAULT_DELIVERY_POLICY.to_dict()
    assert d["allowed_countries"] == {"sms": ["86"], "voice": ["86"], "email": "*"}
    assert (d["max_destinations_per_customer"], d["block_line_types"]) == (
        3,
        ["premium_rate", "shared_cost", "voip"],
    )
    assert parse_delivery_policy({}) == DEFAULT_DELIVERY_POLICY
    assert parse_delivery_policy(d) == DEFAULT_DELIVERY_POLICY


def test_destination_facts_come_from_phonenumbers_and_hide_the_number() -> None:
    uk = facts("+449098790000")
    assert (uk.country, uk.line_type, uk.prefix) == ("44", "premium_rate", "+44-90987")
    sat = facts("+8821611111111")
    assert (sat.country, sat.line_type) == ("882", "voip")
    assert "9098790000" not in uk.digest
    assert facts("+8613800138000", "voice").digest == facts("+8613800138000").digest
    mail = facts("Li@Example.com", "email")
    assert (mail.country, mail.prefix) == ("", "") and mail.digest == facts(
        "li@example.com", "email"
    ).digest


@pytest.mark.parametrize(
    ("policy", "number", "reason"),
    [
        ({}, "+8613800138000", None),
        ({}, "+447911123456", "country_not_allowed"),
        ({"allowed_countries": {"sms": ["44"]}}, "+449098790000", "line_type_blocked"),
        ({"allowed_countries": {"sms": "*"}}, "+447911123456", None),
        ({"allowed_countries": {"sms": "*"}}, "+8821611111111", "country_not_allowed"),
        ({"allowed_countries": {"sms": ["882"]}, "block_line_types": []}, "+8821611111111", None),
        (
            {"allowed_countries": {"sms": ["44"]}, "block_line_types": ["personal_number"]},
            "+447000000001",
            "line_type_blocked",
        ),
    ],
)
def test_screen(policy: dict[str, Any], number: str, reason: str | None) -> None:
    refusal = screen(parse_delivery_policy(policy), facts(number))
    assert (refusal.reason if refusal else None) == reason


def test_email_can_be_turned_off_but_has_no_country() -> None:
    off = parse_delivery_policy({"allowed_countries": {"email": []}})
    refusal = screen(off, facts("a@b.cn", "email"))
    assert refusal is not None and refusal.reason == "channel_not_allowed"
    assert screen(DEFAULT_DELIVERY_POLICY, facts("a@b.cn", "email")) is None


@pytest.mark.parametrize(
    ("usage", "reason", "status"),
    [
        (Usage(), None, None),
        (Usage(prefix_blocked_for=40), "prefix_blocked", 403),
        (Usage(destinations=3), "too_many_destinations", 403),
        (Usage(destinations=3, known_destination=True), None, None),
        (Usage(per_client=1000, window_left=12), "client_rate", 429),
        (Usage(per_customer=10), "customer_rate", 429),
        (Usage(per_prefix=50), "prefix_rate", 429),
        (Usage(per_prefix=49, per_customer=9, per_client=999, destinations=2), None, None),
    ],
)
def test_decide(usage: Usage, reason: str | None, status: int | None) -> None:
    refusal = decide(DEFAULT_DELIVERY_POLICY, facts("+8613800138000"), usage)
    found = (refusal.reason, refusal.status) if refusal else (None, None)
    assert found == (reason, status)
    if refusal is not None and refusal.status == 429:
        assert refusal.retry_after == (12 if reason == "client_rate" else 3600)


def test_email_has_no_prefix_limit() -> None:
    assert (
        decide(DEFAULT_DELIVERY_POLICY, facts("a@b.cn", "email"), Usage(per_prefix=10**6)) is None
    )


def test_should_block() -> None:
    p = DEFAULT_DELIVERY_POLICY
    assert not should_block(p, 29, 0)  # too few judged sends
    assert should_block(p, 30, 5)  # 5/30 < 20%
    assert not should_block(p, 30, 6)  # 20% is enough
    assert not should_block(parse_delivery_policy({"auto_block": {"enabled": False}}), 100, 0)


def test_every_invalid_field_is_named() -> None:
    with pytest.raises(DeliveryPolicyInvalid) as caught:
        parse_delivery_policy(
            {
                "allowed_countries": {"fax": "*", "sms": ["+86"]},
                "limits": {"per_hour": 1, "per_client_per_hour": True},
                "auto_block": {"min_conversion": -0.1, "window_seconds": 60, "grace_seconds": 60},
                "block_line_types": ["premium"],
            }
        )
    assert set(caught.value.errors) == {
        "allowed_countries.fax",
        "allowed_countries.sms",
        "limits.per_hour",
        "limits.per_client_per_hour",
        "auto_block.min_conversion",
        "auto_block.grace_seconds",
        "block_line_types",
    }
    assert str(caught.value) == "the delivery policy is not valid"
