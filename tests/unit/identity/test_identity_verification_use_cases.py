"""The verification use cases (start, check, approve) against fakes of their ports.

No Redis and no socket: each test runs in well under a millisecond of I/O. What the Redis
adapters do is tested in tests/integration/identity; here, the rules of the use cases.
"""

from __future__ import annotations

import json
from typing import Any

import pyotp
import pytest

from services.identity.adapters.pyotp_totp import PyotpCodes
from services.identity.config import IdentityConfig
from services.identity.devices import Devices
from services.identity.domain.errors import CustomerLocked
from services.identity.domain.lockout import Counters
from services.identity.factor_env import PluginEnv
from services.identity.factors import load_registry
from services.identity.policies import Policies
from services.identity.ports import AnswerHasher, DeliveryProvider
from services.identity.sessions import Sessions
from services.identity.verification import Verifications
from tests.unit.identity.fakes import FakeStore, FakeTokens

CID = "c-unit"
NOW = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PHONE = {"kind": "browser", "user_agent": "unit/1.0", "platform": "unit", "screen": "1x1"}


class PlainAnswers(AnswerHasher):
    def hash(self, answer: str) -> str:
        return "plain:" + answer

    def verify(self, answer: str, stored: str) -> tuple[bool, str | None]:
        return stored == "plain:" + answer, None


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class World:
    """The verification use cases wired as bootstrap wires them, on fakes."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.store = FakeStore(self.clock)
        self.tokens = FakeTokens()
        config = IdentityConfig(
            otp_key=b"o" * 32, kba_pepper=b"k" * 32, fingerprint_key=b"f" * 32,
            document_secret=b"d" * 32,
        )  # fmt: skip
        registry = load_registry()
        self.policies = Policies(self.store, registry, self.clock)
        self.devices = Devices(self.store, self.policies, config, self.clock)
        self.sessions = Sessions(self.store, self.tokens, self.policies, self.devices, self.clock)

        def no_delivery(channel: str) -> DeliveryProvider:
            raise AssertionError("nothing is delivered in these tests")

        env = PluginEnv(
            self.store,
            config,
            self.clock,
            delivery=no_delivery,
            answers=PlainAnswers(),
            totp=PyotpCodes(),
        )
        self.verification = Verifications(
            self.store, self.store, self.tokens, registry, config,
            policies=self.policies, devices=self.devices, sessions=self.sessions,
            env=env, clock=self.clock,
        )  # fmt: skip

    def enrol_totp(self) -> None:
        record = {"factor_id": "f-totp", "type": "totp", "status": "active", "created_at": 1.0}
        self.store.save_factor(CID, {**record, "data": {"secret": SECRET}, "public": {}}, [])

    def code(self) -> str:
        return pyotp.TOTP(SECRET).at(self.clock())

    def wrong_code(self) -> str:
        right = self.code()
        return next(c for c in ("000000", "111111") if c != right)

    def set_policy(self, tier: str, **changes: Any) -> None:
        policy = {**json.loads(json.dumps(self.policies.get_policy("default"))), **changes}
        policy.pop("tier", None)
        self.store.policies[tier] = json.dumps(policy)

    def start(self, **extra: Any) -> dict[str, Any]:
        result = self.verification.start({"customer_id": CID, "channel": "app", **extra})
        return result.body

    def check(self, vid: str, code: str) -> dict[str, Any]:
        return self.verification.check(vid, {"factor": "totp", "code": code}).body


@pytest.fixture
def world() -> World:
    w = World()
    w.enrol_totp()
    return w


def event_types(world: World) -> list[str]:
    return [e.type for e in world.store.events]


def test_a_right_totp_code_approves_and_mints_a_session_token(world: World) -> None:
    started = world.start()
    assert started["status"] == "pending" and "totp" in started["available_factors"]
    body = world.check(started["verification_id"], world.code())
    assert body["status"] == "approved" and body["satisfied_factors"] == ["totp"]
    claims = world.tokens.verify(body["session_token"])
    assert claims is not None and claims["sub"] == CID and claims["sid"] == body["sid"]
    assert world.store.sessions[body["sid"]]["amr"] == ["totp"]
    assert event_types(world)[-2:] == [
        "identity.verification.approved",
        "identity.session.issued",
    ]
    assert world.store.attempts[started["verification_id"]] == 0  # the success was refunded


def test_a_wrong_code_counts_an_attempt_and_stays_pending(world: World) -> None:
    vid = world.start()["verification_id"]
    body = world.check(vid, world.wrong_code())
    assert body["status"] == "pending" and body["remaining_attempts"] == 4
    assert world.store.attempts[vid] == 1
    assert world.store.customers[CID].failures == 1
    assert event_types(world)[-1] == "identity.verification.failed"
    assert world.check(vid, world.wrong_code())["remaining_attempts"] == 3


def test_the_last_allowed_wrong_code_locks_the_customer(world: World) -> None:
    world.set_policy("default", max_attempts=2)
    vid = world.start()["verification_id"]
    world.check(vid, world.wrong_code())
    body = world.check(vid, world.wrong_code())
    assert body["status"] == "locked" and body["remaining_attempts"] == 0
    assert world.store.verifications[vid]["status"] == "locked"
    with pytest.raises(CustomerLocked):
        world.check(vid, world.code())


def test_a_locked_customer_gets_customer_locked_even_with_the_right_code(world: World) -> None:
    vid = world.start()["verification_id"]
    world.store.customers[CID] = Counters(locked_until=NOW + 600)
    with pytest.raises(CustomerLocked) as raised:
        world.check(vid, world.code())
    assert raised.value.retry_after == 600 and not raised.value.held
    assert world.store.sessions == {}


def test_a_held_customer_is_locked_without_a_retry_after(world: World) -> None:
    vid = world.start()["verification_id"]
    world.store.customers[CID] = Counters(streak=100)
    with pytest.raises(CustomerLocked) as raised:
        world.check(vid, world.code())
    assert raised.value.held and raised.value.retry_after is None


def test_a_tier_needing_two_factors_stays_pending_after_one(world: World) -> None:
    world.set_policy("gold", min_factors=2)
    world.store.profiles[CID] = {"tier": "gold"}
    started = world.start()
    assert started["tier"] == "gold" and started["required"]["min_factors"] == 2
    body = world.check(started["verification_id"], world.code())
    assert body["status"] == "pending" and body["satisfied_factors"] == ["totp"]
    assert world.store.sessions == {}
    assert world.store.satisfied[started["verification_id"]] == {"totp"}


def test_a_start_with_a_reusable_session_token_reuses_it(world: World) -> None:
    first = world.check(world.start()["verification_id"], world.code())
    again = world.verification.start(
        {"customer_id": CID, "channel": "app", "session_token": first["session_token"]}
    )
    assert again.status == 200
    assert again.body["reused"] is True and again.body["sid"] == first["sid"]
    assert again.body["satisfied_factors"] == ["totp"]
    assert world.store.counters["reused"] == 1


def test_a_bound_token_without_its_device_is_not_reused(world: World) -> None:
    """Issue 16: a token bound to a device, presented without it, would mint an unbound
    token usable anywhere; the start asks for a verification instead."""
    started = world.start(device=PHONE)
    first = world.check(started["verification_id"], world.code())
    claims = world.tokens.signed[first["session_token"]]
    bound = world.devices.fingerprint(PHONE)["fingerprint"]
    world.tokens.signed[first["session_token"]] = {**claims, "cnf": {"fp": bound}}
    alone = world.start(session_token=first["session_token"])
    assert alone["status"] == "pending" and "session_token" not in alone
    with_device = world.start(session_token=first["session_token"], device=PHONE)
    assert with_device["status"] == "approved" and with_device["reused"] is True


def test_a_code_used_once_does_not_approve_a_second_verification(world: World) -> None:
    code = world.code()
    assert world.check(world.start()["verification_id"], code)["status"] == "approved"
    vid = world.start()["verification_id"]  # no token: asked again
    body = world.check(vid, code)
    assert body["status"] == "pending" and world.store.attempts[vid] == 1
