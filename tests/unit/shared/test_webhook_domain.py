"""The pure part of outgoing webhooks: patterns, backoff, secrets, signatures."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from shared.webhooks import domain
from shared.webhooks.domain import Backoff, InvalidWebhook
from shared.webhooks.targets import TargetPolicy


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("crm.case.*", "crm.case.created", True),
        ("crm.case.*", "crm.case.sla.breached", True),
        ("crm.case.*", "crm.case", False),
        ("crm.case.*", "crm.cases.created", False),
        ("crm.case.created", "crm.case.created", True),
        ("crm.case.created", "crm.case.created.x", False),
        ("crm.*.created", "crm.case.created", True),
        ("crm.*.created", "crm.profile.created", True),
        ("crm.*.created", "crm.case.closed", False),
        ("crm.*.created", "crm.case.x.created", False),
        ("*", "crm.case.created", True),
        ("crm.*", "crm.webhook.disabled", True),
    ],
)
def test_patterns(pattern: str, event_type: str, expected: bool) -> None:
    assert domain.matches(pattern, event_type) is expected


@pytest.mark.parametrize("pattern", ["", "crm..x", "CRM.case", "crm.ca*", "crm.case.#", "x" * 201])
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidWebhook):
        domain.check_pattern(pattern, "crm")


def test_a_pattern_of_another_service_is_refused() -> None:
    with pytest.raises(InvalidWebhook):
        domain.check_pattern("identity.*", "crm")
    assert domain.check_pattern("*.case.created", "crm") == "*.case.created"


def test_backoff_doubles_up_to_its_cap_and_ends_after_the_period() -> None:
    backoff = Backoff(base=5, cap=60, period=3600)
    assert [backoff.delay(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert backoff.delay(10_000) == 60
    assert not backoff.exhausted(1000.0, 4599.0)
    assert backoff.exhausted(1000.0, 4600.0)


def test_signatures_verify_with_the_reference_library() -> None:
    secret = domain.new_secret()
    hook = Webhook(secret)
    body = b'{"id":"e1","type":"crm.case.created","data":{}}'
    # The library checks the timestamp against its own clock (5 minutes): sign with now.
    now = int(time.time())
    assert hook.verify(body, domain.headers(secret, "e1", now, body))["id"] == "e1"
    # And for any timestamp the header is the one the library computes.
    at = 1_700_000_000
    expected = hook.sign("e1", datetime.fromtimestamp(at, tz=UTC), body.decode())
    assert domain.headers(secret, "e1", at, body)["webhook-signature"] == expected


@pytest.mark.parametrize(
    "secret", ["s3cret", "whsec_", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + "A" * 120]
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidWebhook):
        domain.secret_key(secret)


def test_a_secret_is_masked_to_its_last_four_characters() -> None:
    secret = domain.new_secret()
    assert domain.mask(secret) == "whsec_..." + secret[-4:]
    assert len(domain.secret_key(secret)) == 32


def _policy(dev: bool, allowed: str, answer: list[str]) -> TargetPolicy:
    return TargetPolicy.parse(dev, allowed, resolver=lambda host, port: answer)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_a_name_resolving_inside_is_refused_outside_dev(address: str) -> None:
    with pytest.raises(InvalidWebhook):
        _policy(False, "", ["93.184.216.34", address]).check("https://hooks.example.com/")
    assert _policy(True, "", [address]).check("https://hooks.example.com/").address == address


def test_the_allow_list_takes_names_and_networks() -> None:
    target = _policy(False, "10.0.0.0/8", ["10.1.2.3"]).check("http://hooks.internal:8080/a?b=1")
    assert (target.host, target.port, target.path, target.address) == (
        "hooks.internal",
        8080,
        "/a?b=1",
        "10.1.2.3",
    )
    assert _policy(False, "hooks.internal", ["10.1.2.3"]).check("http://hooks.internal/").port == 80
    with pytest.raises(InvalidWebhook):
        _policy(False, "10.0.0.0/8", ["192.168.0.1"]).check("http://hooks.internal/")


def test_a_public_address_is_accepted_and_pinned() -> None:
    target = _policy(False, "", ["93.184.216.34"]).check("https://hooks.example.com/x")
    assert (target.scheme, target.port, target.address) == ("https", 443, "93.184.216.34")
