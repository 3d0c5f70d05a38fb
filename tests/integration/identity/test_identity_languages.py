"""Delivered codes in the customer's language (API.md A, "Languages"): the request's
``language``, else the CRM profile's (projected by the consumer), else the default;
through the real app, the real consumer and the real Redis, read back from the dev
outbox or a stand-in SMS gateway."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.integration.identity.conftest import Api, Gateway
from tests.integration.identity.test_identity_consumer import drain, publish
from tests.integration.identity.test_identity_providers import SmtpSink, smtp_port  # noqa: F401

ZH_SMS = re.compile(r"您的验证码是：\d{6}，5 分钟内有效。请勿告诉任何人。")
EN_SMS = re.compile(r"Your verification code is \d{6}\. It expires in 5 minutes\. Never share")


def customer(api: Api, cid: str, number: str, factor: str = "sms_otp") -> None:
    r = api.enroll(cid, {"type": factor, "destination": number})
    assert r.status_code == 201, r.json


def profile(redis: Any, cid: str, language: str | None, event: str = "created") -> None:
    publish(redis, f"crm.profile.{event}", profile_id=cid, tier="default", language=language)
    drain(redis)


def code_sent(api: Api, cid: str, to: str, factor: str = "sms_otp", **body: Any) -> Any:
    """Start, challenge; (the challenge's answer, the message in the dev outbox)."""
    start = {k: body.pop(k) for k in list(body) if k.startswith("start_")}
    vid = api.start(cid, **{k[6:]: v for k, v in start.items()}).json["verification_id"]
    r = api.challenge(vid, factor, **body)
    assert r.status_code == 200, r.json
    return r.json, api.messages(to)[0]


def test_an_sms_to_a_zh_customer_is_chinese_and_to_an_en_customer_english(
    api: Api, redis: Any
) -> None:
    customer(api, "c-zh", "+8613800138001")
    customer(api, "c-en", "+8613800138002")
    profile(redis, "c-zh", "zh-CN")
    profile(redis, "c-en", "en")
    public, message = code_sent(api, "c-zh", "+8613800138001")
    assert ZH_SMS.fullmatch(message["message"]), message
    assert message["language"] == "zh" and public["delivery"]["language"] == "zh"
    public, message = code_sent(api, "c-en", "+8613800138002")
    assert EN_SMS.match(message["message"]), message
    assert message["language"] == "en" and public["delivery"]["language"] == "en"


def test_the_requests_language_wins_over_the_profiles(api: Api, redis: Any) -> None:
    for n in range(3):
        customer(api, f"c-{n}", f"+861380013810{n}")
        profile(redis, f"c-{n}", "zh")
    # The start's language is kept for the codes of that verification...
    _, message = code_sent(api, "c-0", "+8613800138100", start_language="en-US")
    assert EN_SMS.match(message["message"]) and message["language"] == "en"
    # ...the challenge's wins over it...
    _, message = code_sent(api, "c-1", "+8613800138101", start_language="en", language="zh-Hans")
    assert ZH_SMS.fullmatch(message["message"]) and message["language"] == "zh"
    # ...and a language without a catalog passes to the next in line: the profile's.
    _, message = code_sent(api, "c-2", "+8613800138102", language="fr")
    assert ZH_SMS.fullmatch(message["message"]) and message["language"] == "zh"


def test_a_customer_the_crm_does_not_know_reads_the_default_zh(api: Api, redis: Any) -> None:
    customer(api, "c-new", "+8613800138200")
    public, message = code_sent(api, "c-new", "+8613800138200")
    assert ZH_SMS.fullmatch(message["message"]) and message["language"] == "zh"
    assert public["delivery"] == {"channel": "sms", "to": "+86*******8200", "language": "zh"}


def test_a_language_changed_in_the_crm_reaches_the_next_code(api: Api, redis: Any) -> None:
    numbers = ["+8613800138300", "+8613800138301", "+8613800138302"]
    for number in numbers:  # one each: a destination gets a code every 30 s at most
        customer(api, "c-1", number)
    listed = api.call("GET", "/v1/customers/c-1/factors").json["items"]
    factors = {f["destination"][-4:]: f["factor_id"] for f in listed}

    def next_code(number: str) -> Any:
        return code_sent(api, "c-1", number, factor_id=factors[number[-4:]])[1]

    profile(redis, "c-1", "zh")
    assert ZH_SMS.fullmatch(next_code(numbers[0])["message"])
    profile(redis, "c-1", "en", event="updated")
    assert EN_SMS.match(next_code(numbers[1])["message"])
    # A language removed in the CRM no longer counts: the default (zh) applies.
    profile(redis, "c-1", None, event="updated")
    message = next_code(numbers[2])
    assert ZH_SMS.fullmatch(message["message"]) and message["language"] == "zh"


def test_a_voice_code_reads_digit_by_digit_in_the_customers_language(api: Api, redis: Any) -> None:
    customer(api, "c-1", "+8613800138400", "voice_otp")
    customer(api, "c-2", "+8613800138401", "voice_otp")
    profile(redis, "c-2", "en")
    _, zh = code_sent(api, "c-1", "+8613800138400", "voice_otp")
    assert re.fullmatch(r"您的验证码是：(\d(，\d){5})。再重复一遍：\1。", zh["message"]), zh
    _, en = code_sent(api, "c-2", "+8613800138401", "voice_otp")
    assert re.fullmatch(
        r"Your verification code is (\d(, \d){5})\. Once again: \1\.", en["message"]
    )


def test_an_email_code_has_its_subject_in_the_customers_language(api: Api, redis: Any) -> None:
    customer(api, "c-1", "li@example.com", "email_otp")
    _, message = code_sent(api, "c-1", "li@example.com", "email_otp")
    assert message["subject"] == "您的验证码" and message["language"] == "zh"
    assert message["message"].endswith("如果您没有申请此验证码，请忽略本邮件。")


def test_a_malformed_language_is_a_400_problem_and_sends_nothing(api: Api, redis: Any) -> None:
    customer(api, "c-1", "+8613800138500")
    r = api.start("c-1", language="zh\n")
    assert r.status_code == 400 and r.content_type == "application/problem+json"
    assert "language" in r.json["errors"]
    vid = api.start("c-1").json["verification_id"]
    for junk in ("", "x" * 40, "中文", 7):
        r = api.challenge(vid, "sms_otp", language=junk)
        assert r.status_code == 400 and "language" in r.json["errors"], (junk, r.json)
    assert api.messages("+8613800138500") == []


def test_the_default_is_set_by_sb_default_language_and_the_gateway_hears_the_language(
    webhook_app: Callable[..., Flask], headers: Callable[[str], dict[str, str]], redis: Any
) -> None:
    api = Api(webhook_app(SB_DEFAULT_LANGUAGE="en").test_client(), headers)
    customer(api, "c-1", "+8613800138600")
    customer(api, "c-2", "+8613800138601")
    profile(redis, "c-2", "zh")
    for cid in ("c-1", "c-2"):
        vid = api.start(cid).json["verification_id"]
        assert api.challenge(vid, "sms_otp").status_code == 200
    sent = [json.loads(body) for _, body in Gateway.received]
    assert [m["language"] for m in sent] == ["en", "zh"]
    assert EN_SMS.match(sent[0]["message"]) and ZH_SMS.fullmatch(sent[1]["message"])


def test_an_smtp_mail_in_chinese_has_its_subject_and_body_intact(smtp_port: int) -> None:  # noqa: F811
    from services.identity.adapters.delivery import SmtpDelivery
    from services.identity.factors.texts import code_message

    text, extra = code_message("email", "123456", 300, "zh")
    provider = SmtpDelivery("127.0.0.1", smtp_port, "no-reply@switchboard.test")
    provider.send("email", "li@example.com", text, {"language": "zh", **extra})
    raw = SmtpSink.messages[0]
    assert raw.isascii()  # nothing 8-bit: a server without 8BITMIME takes it as it is
    mail = email.message_from_string(raw, policy=email.policy.default)
    assert mail["Subject"] == "您的验证码" and mail["Content-Language"] == "zh"
    assert mail.get_content().strip() == text
    # A provider asked without a subject (a plugin's send) still titles it in the language.
    provider.send("email", "li@example.com", "Code: 123456", {"language": "en"})
    mail = email.message_from_string(SmtpSink.messages[1], policy=email.policy.default)
    assert mail["Subject"] == "Your verification code" and mail["Content-Language"] == "en"
