"""The delivery circuit breaker, on a real Redis and a real HTTP gateway: a gateway that
keeps failing stops costing a worker per code sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from services.identity.adapters.delivery import (
    CircuitBreaker,
    DeliveryFailed,
    DeliveryRejected,
    GatewayUnavailable,
    GuardedDelivery,
    WebhookDelivery,
)
from tests.integration.identity.conftest import Api, Gateway


@pytest.fixture
def gateway(gateway: str) -> str:
    """The shared stand-in gateway, down (503) until a test says otherwise."""
    Gateway.status = 503
    return gateway


def guarded(redis: Any, url: str, failures: int = 3, open_seconds: float = 1) -> GuardedDelivery:
    breaker = CircuitBreaker(redis, "webhook:sms", failures=failures, open_seconds=open_seconds)
    return GuardedDelivery(WebhookDelivery(url, b"s", retries=0), breaker)


def send(provider: GuardedDelivery) -> str:
    return provider.send("sms", "+8613800138000", "Your code is 123456", {})


def test_consecutive_failures_open_it_and_then_the_gateway_is_not_called(
    redis: Any, gateway: str
) -> None:
    provider = guarded(redis, gateway, failures=3, open_seconds=30)
    for _ in range(3):
        with pytest.raises(DeliveryFailed) as failed:
            send(provider)
        assert not isinstance(failed.value, GatewayUnavailable)
    assert Gateway.posts == 3
    began = time.monotonic()
    with pytest.raises(GatewayUnavailable) as refused:
        send(provider)
    assert time.monotonic() - began < 0.5
    assert 25 <= refused.value.retry_after <= 30
    assert Gateway.posts == 3


def test_every_process_sees_the_same_breaker(redis: Any, gateway: str) -> None:
    one, other = guarded(redis, gateway, failures=2), guarded(redis, gateway, failures=2)
    for provider in (one, other):
        with pytest.raises(DeliveryFailed):
            send(provider)
    with pytest.raises(GatewayUnavailable):
        send(one)
    assert Gateway.posts == 2


def test_a_success_forgets_the_failures_before_it(redis: Any, gateway: str) -> None:
    provider = guarded(redis, gateway, failures=3)
    for status in (503, 503, 202, 503, 503):
        Gateway.status = status
        if status == 202:
            send(provider)
        else:
            with pytest.raises(DeliveryFailed) as failed:
                send(provider)
            assert not isinstance(failed.value, GatewayUnavailable)
    assert Gateway.posts == 5


def test_a_refused_message_does_not_count_against_the_gateway(redis: Any, gateway: str) -> None:
    Gateway.status = 400  # e.g. a number the gateway cannot reach: the gateway works
    provider = guarded(redis, gateway, failures=2)
    for _ in range(4):
        with pytest.raises(DeliveryRejected):
            send(provider)
    assert Gateway.posts == 4


def test_after_the_open_time_one_probe_goes_through_and_its_success_closes_it(
    redis: Any, gateway: str
) -> None:
    provider = guarded(redis, gateway, failures=2, open_seconds=1)
    for _ in range(2):
        with pytest.raises(DeliveryFailed):
            send(provider)
    with pytest.raises(GatewayUnavailable):
        send(provider)
    time.sleep(1.1)
    Gateway.status = 202
    send(provider)  # the probe
    send(provider)  # closed again: no probe to wait for
    assert Gateway.posts == 4


def test_a_failed_probe_opens_it_again_at_once(redis: Any, gateway: str) -> None:
    provider = guarded(redis, gateway, failures=3, open_seconds=1)
    for _ in range(3):
        with pytest.raises(DeliveryFailed):
            send(provider)
    time.sleep(1.1)
    with pytest.raises(DeliveryFailed) as probe:
        send(provider)
    assert not isinstance(probe.value, GatewayUnavailable)
    with pytest.raises(GatewayUnavailable) as refused:  # not three more failures first
        send(provider)
    assert refused.value.retry_after == 1  # open again for its open time, not waiting on a probe
    time.sleep(1.1)
    Gateway.status = 202
    send(provider)  # the next open time over: the next probe
    assert Gateway.posts == 5


def test_one_probe_at_a_time(redis: Any) -> None:
    breaker = CircuitBreaker(redis, "webhook:voice", failures=1, open_seconds=1)
    assert breaker.allow() == 0
    breaker.record(False)
    assert breaker.allow() > 0
    time.sleep(1.1)
    assert breaker.allow() == 0  # this caller probes
    assert 0 < breaker.allow() <= 1  # the others wait for the probe, briefly
    breaker.record(True)
    assert breaker.allow() == 0 and breaker.allow() == 0


def test_an_open_breaker_is_a_503_with_retry_after_and_no_gateway_call(
    redis: Any,
    webhook_app: Callable[..., Flask],
    headers: Callable[[str], dict[str, str]],
) -> None:
    app = webhook_app(
        IDENTITY_DELIVERY_BREAKER_FAILURES="2", IDENTITY_DELIVERY_BREAKER_SECONDS="60"
    )
    api = Api(app.test_client(), headers)
    answers = []
    for i in range(3):  # a customer each: the per-destination throttle stays out of it
        cid = f"c-{i}"
        api.enroll(cid, {"type": "sms_otp", "destination": f"+861380013800{i}"})
        vid = api.start(cid, "chat").json["verification_id"]
        answers.append(api.challenge(vid, "sms_otp"))
    assert [r.status_code for r in answers] == [503, 503, 503]
    assert "Retry-After" not in answers[0].headers and "Retry-After" not in answers[1].headers
    assert 55 <= int(answers[2].headers["Retry-After"]) <= 60
    assert answers[2].json["retry_after"] == int(answers[2].headers["Retry-After"])
    assert Gateway.posts == 2
    # The alert for a gateway down: only the SMS breaker is open.
    families = {f.name: f for f in text_string_to_metric_families(api.c.get("/metrics").text)}
    states = {
        (x.labels["provider"], x.labels["channel"]): x.value
        for x in families["sb_identity_delivery_breaker_open"].samples
    }
    assert states == {("webhook", "sms"): 1.0, ("webhook", "email"): 0.0, ("webhook", "voice"): 0.0}
