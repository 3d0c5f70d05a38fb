"""Third-party factors, delivery providers and document verifiers via entry points."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from services.identity.adapters.delivery import DeliveryFailed, WebhookDelivery, sign_body
from services.identity.app import create_app
from services.identity.factors import load_registry
from shared.config import Settings
from tests.integration.identity.conftest import Api, Gateway

PLUGIN = '''
import hashlib, hmac
from services.identity.domain.factors import Enrollment, FactorPlugin


class PinFactor(FactorPlugin):
    """A 4-8 digit PIN, a knowledge factor (the worked example of docs/plugins.md)."""

    type = "pin"
    category = "knowledge"

    def enroll(self, env, customer_id, params):
        pin = str(params.get("answers", {}).get("pin", ""))
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            from services.identity.domain.errors import EnrollmentInvalid
            raise EnrollmentInvalid("a PIN is 4 to 8 digits", {"answers": ["pin: 4-8 digits"]})
        digest = hmac.new(env.secret_key("pin"), pin.encode(), hashlib.sha256).hexdigest()
        return Enrollment(data={"digest": digest}, public={})

    def check(self, env, attempt, records):
        pin = str(attempt.params.get("code") or "")
        digest = hmac.new(env.secret_key("pin"), pin.encode(), hashlib.sha256).hexdigest()
        return any(hmac.compare_digest(digest, r.data["digest"]) for r in records)


class TokenFactor(FactorPlugin):
    """A hardware token showing a fixed response for its serial: a possession factor."""

    type = "hwtoken"
    category = "possession"

    def enroll(self, env, customer_id, params):
        serial = str(params.get("destination", ""))
        return Enrollment(data={"digest": self._digest(env, serial)}, public={})

    def check(self, env, attempt, records):
        digest = self._digest(env, str(attempt.params.get("code") or ""))
        return any(hmac.compare_digest(digest, r.data["digest"]) for r in records)

    @staticmethod
    def _digest(env, value):
        return hmac.new(env.secret_key("hwtoken"), value.encode(), hashlib.sha256).hexdigest()


class PrintDelivery:
    name = "print"

    def __init__(self, settings):
        self.sent = []

    def send(self, channel, to, message, meta):
        self.sent.append((channel, to))
        return "m-1"
'''


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution declaring entry points, as pip would leave it."""
    (tmp_path / "sb_pin_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "sb_pin_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-pin-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[switchboard.identity.factors]\npin = sb_pin_plugin:PinFactor\n"
        "hwtoken = sb_pin_plugin:TokenFactor\n\n"
        "[switchboard.identity.delivery]\nprint = sb_pin_plugin:PrintDelivery\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield


@pytest.mark.usefixtures("third_party")
def test_a_factor_from_an_entry_point_is_registered() -> None:
    registry = load_registry()
    assert "pin" in registry and registry.get("pin").category == "knowledge"
    assert "totp" in registry


@pytest.mark.usefixtures("third_party")
def test_a_plugged_factor_takes_part_in_a_verification(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]]
) -> None:
    app = create_app(make_settings("identity", IDENTITY_DELIVERY_SMS="print"))
    api = Api(app.test_client(), headers)
    policy = {"min_factors": 2, "allowed_factors": ["totp", "pin"]}
    assert api.tier("gold", policy).status_code == 201
    _, totp = api.enroll_totp("c-1")
    assert api.enroll("c-1", {"type": "pin", "answers": {"pin": "4321"}}).status_code == 201
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.check(vid, "pin", code="1111").json["satisfied_factors"] == []
    assert api.check(vid, "pin", code="4321").json["satisfied_factors"] == ["pin"]
    assert api.check(vid, "totp", code=totp.now()).json["status"] == "approved"
    sms = app.extensions["sb"].extras["identity"].delivery("sms")
    # A third party's provider sits behind the delivery circuit breaker like the built-ins.
    assert type(sms).__name__ == "GuardedDelivery"
    assert type(sms.provider).__name__ == "PrintDelivery"


@pytest.mark.usefixtures("third_party")
def test_a_plugged_possession_factor_satisfies_require_possession(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]]
) -> None:
    app = create_app(make_settings("identity"))
    api = Api(app.test_client(), headers)
    only_knowledge = {"min_factors": 1, "allowed_factors": ["pin"], "require_possession": True}
    assert api.tier("silver", only_knowledge).status_code == 400
    policy = {
        "min_factors": 1,
        "allowed_factors": ["pin", "hwtoken"],
        "require_possession": True,
        "channels": {"voice": {"allowed_factors": ["hwtoken"]}},
    }
    assert api.tier("gold", policy).status_code == 201
    api.enroll("c-1", {"type": "pin", "answers": {"pin": "4321"}})
    api.enroll("c-1", {"type": "hwtoken", "destination": "HW-778"})
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    knowledge_only = api.check(vid, "pin", code="4321").json
    assert knowledge_only["status"] == "pending"
    assert knowledge_only["available_factors"] == ["hwtoken"]
    approved = api.check(vid, "hwtoken", code="HW-778").json
    assert approved["status"] == "approved" and approved["satisfied_factors"] == ["pin", "hwtoken"]


def test_the_webhook_signs_its_posts_and_retries_server_errors(gateway: str) -> None:
    Gateway.failures = 2
    provider = WebhookDelivery(gateway, b"hook-secret", retries=3, backoff=0.01)
    provider.send("sms", "+8613800138000", "Your code is 123456", {"verification_id": "v-1"})
    assert len(Gateway.received) == 1
    sent_headers, body = Gateway.received[0]
    expected = sign_body(b"hook-secret", sent_headers["X-Switchboard-Timestamp"], body)
    assert sent_headers["X-Switchboard-Signature"] == expected
    assert json.loads(body)["to"] == "+8613800138000"


def test_the_webhook_gives_up_after_its_retries(gateway: str) -> None:
    Gateway.failures = 10
    provider = WebhookDelivery(gateway, b"s", retries=2, backoff=0.01)
    with pytest.raises(DeliveryFailed):
        provider.send("sms", "+8613800138000", "x", {})
    assert Gateway.failures == 7


def test_a_gateway_that_stays_down_is_a_503_not_a_500(
    webhook_app: Callable[..., Flask], headers: Callable[[str], dict[str, str]]
) -> None:
    Gateway.failures = 100
    app = webhook_app()
    api = Api(app.test_client(), headers)
    api.enroll("c-1", {"type": "sms_otp", "destination": "+8613800138000"})
    vid = api.start("c-1", "chat").json["verification_id"]
    r = api.challenge(vid, "sms_otp")
    assert r.status_code == 503 and r.mimetype == "application/problem+json"
