"""The built-in factor plugins against a fake FactorEnv (a port, not a database)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest

from services.identity.adapters.argon2_answers import Argon2Answers
from services.identity.adapters.pyotp_totp import PyotpCodes
from services.identity.domain import kba
from services.identity.domain.errors import EnrollmentInvalid, Throttled
from services.identity.domain.factors import Attempt, FactorRecord
from services.identity.factors import load_registry
from services.identity.factors.builtin import KbaFactor, OtpFactor, TotpFactor, mask_email

ANSWERS = Argon2Answers(b"kba" * 4, memory_kib=64, time_cost=1)


@dataclass
class FakeEnv:
    clock: float = 1_700_000_000.0
    steps: dict[str, int] = field(default_factory=dict)
    codes: dict[tuple[str, str], Any] = field(default_factory=dict)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    throttled: bool = False
    updated: list[tuple[str, Any]] = field(default_factory=list)

    def now(self) -> float:
        return self.clock

    def secret_key(self, purpose: str) -> bytes:
        return purpose.encode() * 4

    def setting(self, name: str, default: Any = None) -> Any:
        return {"kba_iterations": 1000}.get(name, default)

    def match_totp(self, secret: str, code: str) -> int | None:
        return PyotpCodes().match(secret, code, self.clock)

    def accept_step(self, factor_id: str, step: int) -> bool:
        if self.steps.get(factor_id, -1) >= step:
            return False
        self.steps[factor_id] = step
        return True

    def store_code(self, verification_id: str, factor: str, record: Any, ttl: int) -> None:
        self.codes[(verification_id, factor)] = record

    def peek_code(self, verification_id: str, factor: str) -> Any:
        return self.codes.get((verification_id, factor))

    def consume_code(self, verification_id: str, factor: str, digest: str) -> bool:
        return self.codes.pop((verification_id, factor), None) is not None

    def throttle(self, destination: str) -> None:
        if self.throttled:
            raise Throttled(30)

    def deliver(self, channel: str, destination: str, message: str, meta: Mapping) -> str:
        self.sent.append((channel, destination, message))
        return "m-1"

    def qr_png_base64(self, text: str) -> str:
        return "png"

    def hash_answer(self, answer: str) -> str:
        return ANSWERS.hash(answer)

    def verify_answer(self, answer: str, stored: str) -> tuple[bool, str | None]:
        return ANSWERS.verify(answer, stored)

    def update_factor_data(self, customer_id: str, record: Any, data: Any) -> bool:
        self.updated.append((record.factor_id, data))
        return True

    def submit_document(self, verification_id: str, document: Mapping) -> str:
        return "doc-1"


def record(enrollment: Any, factor_type: str, fid: str = "f-1") -> FactorRecord:
    return FactorRecord(fid, factor_type, "active", 0.0, enrollment.data, enrollment.public)


def attempt(**params: Any) -> Attempt:
    return Attempt("v-1", "c-1", "chat", params)


def test_totp_accepts_a_code_once_and_never_an_older_one() -> None:
    env, factor = FakeEnv(), TotpFactor()
    enrolled = factor.enroll(env, "c-1", {})
    assert enrolled.status == "pending" and enrolled.response["otpauth_uri"].startswith("otpauth")
    rec = record(enrolled, "totp")
    totp = pyotp.TOTP(rec.data["secret"])
    now_code, older = totp.at(env.clock), totp.at(env.clock - 30)
    assert factor.check(env, attempt(code=now_code), [rec])
    assert not factor.check(env, attempt(code=now_code), [rec])
    assert not factor.check(env, attempt(code=older), [rec])


def test_an_sms_code_is_sent_masked_checked_once_and_expires() -> None:
    env, factor = FakeEnv(), OtpFactor("sms_otp", "sms")
    rec = record(factor.enroll(env, "c-1", {"destination": "+86 138 0013 8000"}), "sms_otp")
    assert rec.data["destination"] == "+8613800138000"
    public, _ = factor.challenge(env, attempt(), [rec])
    assert public["delivery"] == {"channel": "sms", "to": "+86*******8000", "language": "zh"}
    code = env.sent[0][2].split("验证码是：")[1][:6]
    assert "5 分钟内有效" in env.sent[0][2] and code not in str(env.codes)
    assert not factor.check(env, attempt(code="000000" if code != "000000" else "111111"), [rec])
    assert factor.check(env, attempt(code=code), [rec])
    assert not factor.check(env, attempt(code=code), [rec])
    factor.challenge(env, attempt(), [rec])
    late = env.sent[1][2].split("验证码是：")[1][:6]
    env.clock += 300
    assert not factor.check(env, attempt(code=late), [rec])


def test_a_throttled_destination_gets_nothing() -> None:
    env, factor = FakeEnv(throttled=True), OtpFactor("sms_otp", "sms")
    rec = record(factor.enroll(env, "c-1", {"destination": "+8613800138000"}), "sms_otp")
    with pytest.raises(Throttled):
        factor.challenge(env, attempt(), [rec])
    assert env.sent == []


def test_email_destinations_are_validated_and_masked() -> None:
    env, factor = FakeEnv(), OtpFactor("email_otp", "email")
    assert factor.enroll(env, "c", {"destination": "li@example.com"}).public == {
        "destination": "l*@example.com"
    }
    assert mask_email("alice@example.com") == "a****@example.com"
    with pytest.raises(EnrollmentInvalid):
        factor.enroll(env, "c", {"destination": "li@"})


def test_kba_answers_are_hashed_and_checked_normalised() -> None:
    env, factor = FakeEnv(), KbaFactor()
    enrolled = factor.enroll(env, "c-1", {"answers": {"first_pet": "Mao Mao"}})
    assert "Mao" not in str(enrolled.data) and enrolled.public == {"questions": ["first_pet"]}
    rec = record(enrolled, "kba")
    assert factor.check(env, attempt(answers={"first_pet": "  mao   MAO "}), [rec])
    assert not factor.check(env, attempt(answers={"first_pet": "maomao"}), [rec])


def test_every_question_asked_must_be_answered_correctly() -> None:
    env, factor = FakeEnv(), KbaFactor()
    rec = record(factor.enroll(env, "c-1", {"answers": {"pet": "rex", "city": "oslo"}}), "kba")

    def check(answers: dict[str, Any], asked: list[str] | None = None) -> bool:
        challenge = {"questions": asked} if asked is not None else {}
        return factor.check(
            env, Attempt("v-1", "c-1", "web", {"answers": answers}, challenge), [rec]
        )

    assert check({"pet": "Rex", "city": "OSLO", "x": "y"})
    assert not check({"pet": "Rex"})
    assert check({"pet": "rex", "city": "wrong"}, asked=["pet"])
    assert not factor.check(env, attempt(answers={"pet": "rex"}), [])  # nothing to ask


def test_a_legacy_pbkdf2_answer_is_upgraded_to_argon2id_only_when_right() -> None:
    env, factor = FakeEnv(), KbaFactor()
    legacy = kba.hash_answer("Rex", pepper=env.secret_key("kba"), iterations=1000)
    rec = FactorRecord("f-1", "kba", "active", 0.0, {"answers": {"pet": legacy}})
    assert not factor.check(env, attempt(answers={"pet": "max"}), [rec])
    assert env.updated == []
    assert factor.check(env, attempt(answers={"pet": " REX"}), [rec])
    [(fid, data)] = env.updated
    assert fid == "f-1" and data["answers"]["pet"].startswith("$argon2id$")
    rec.data = data
    assert factor.check(env, attempt(answers={"pet": "rex"}), [rec]) and len(env.updated) == 1


def test_the_registry_knows_every_built_in_factor_and_its_category() -> None:
    registry = load_registry()
    assert set(registry.types()) >= {
        "totp",
        "sms_otp",
        "email_otp",
        "voice_otp",
        "kba",
        "trusted_device",
        "document",
    }
    assert registry.possession_types() == {
        "totp",
        "sms_otp",
        "email_otp",
        "voice_otp",
        "trusted_device",
    }
