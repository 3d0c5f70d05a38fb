"""What an OTP factor sends, in the customer's language (against the fake FactorEnv)."""

from __future__ import annotations

import re
from typing import Any

from services.identity.domain.factors import Attempt
from services.identity.factors.builtin import OtpFactor
from services.identity.factors.texts import code_message
from tests.unit.identity.test_identity_factors import FakeEnv, record


class RecordingEnv(FakeEnv):
    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.settings, self.metas = settings, []

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)

    def deliver(self, channel: str, destination: str, message: str, meta: Any) -> str:
        self.metas.append(dict(meta))
        return super().deliver(channel, destination, message, meta)


def send(factor_type: str, channel: str, destination: str, language: str, **settings: Any) -> Any:
    env, factor = RecordingEnv(**settings), OtpFactor(factor_type, channel)
    rec = record(factor.enroll(env, "c-1", {"destination": destination}), factor_type)
    public, _ = factor.challenge(env, Attempt("v-1", "c-1", "chat", {}, language=language), [rec])
    return public, env.sent[0][2], env.metas[0]


def test_an_sms_reads_in_the_attempts_language() -> None:
    public, text, meta = send("sms_otp", "sms", "+8613800138000", "en")
    assert text.startswith("Your verification code is ") and "5 minutes" in text
    assert meta["language"] == "en" and public["delivery"]["language"] == "en"
    public, text, meta = send("sms_otp", "sms", "+8613800138000", "zh")
    assert re.fullmatch(r"您的验证码是：\d{6}，5 分钟内有效。请勿告诉任何人。", text), text
    assert meta["language"] == "zh" and public["delivery"]["language"] == "zh"


def test_without_a_language_the_configured_default_is_used() -> None:
    assert send("sms_otp", "sms", "+8613800138000", "")[2]["language"] == "zh"
    _, text, meta = send("sms_otp", "sms", "+8613800138000", "", default_language="en")
    assert meta["language"] == "en" and text.startswith("Your verification code")


def test_a_voice_call_reads_the_digits_one_by_one_twice() -> None:
    _, text, _ = send("voice_otp", "voice", "+8613800138000", "zh")
    spoken = re.fullmatch(r"您的验证码是：(\d(?:，\d){5})。再重复一遍：(\d(?:，\d){5})。", text)
    assert spoken is not None and spoken.group(1) == spoken.group(2), text
    _, text, _ = send("voice_otp", "voice", "+8613800138000", "en")
    assert re.fullmatch(r"Your verification code is (\d(, \d){5})\. Once again: \1\.", text), text


def test_an_email_has_a_subject_and_a_line_for_who_did_not_ask() -> None:
    _, text, meta = send("email_otp", "email", "li@example.com", "zh")
    assert meta["subject"] == "您的验证码" and text.endswith(
        "如果您没有申请此验证码，请忽略本邮件。"
    )
    _, text, meta = send("email_otp", "email", "li@example.com", "en")
    assert meta["subject"] == "Your verification code" and "ignore this e-mail" in text


def test_the_lifetime_is_never_promised_longer_than_it_is() -> None:
    # IDENTITY_OTP_LIFETIME is 30..600 s: under a minute in seconds, else whole minutes
    # rounded down (the old text promised "0 minutes" for 30 s).
    assert "expires in 30 seconds" in code_message("sms", "123456", 30, "en")[0]
    assert "expires in 1 minute." in code_message("sms", "123456", 90, "en")[0]
    assert "30 秒内有效" in code_message("sms", "123456", 30, "zh")[0]
    assert "1 分钟内有效" in code_message("sms", "123456", 119, "zh")[0]
