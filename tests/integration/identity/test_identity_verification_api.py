from __future__ import annotations

import json
import time
from typing import Any

import pyotp
from flask import Flask

from tests.integration.identity.conftest import CHROME, GOLD, Api

PHONE = "+8613800138000"


def enrolled(api: Api, cid: str = "c-1") -> pyotp.TOTP:
    api.tier("gold", GOLD)
    _, totp = api.enroll_totp(cid)
    assert api.enroll(cid, {"type": "sms_otp", "destination": PHONE}).status_code == 201
    assert api.enroll(cid, {"type": "voice_otp", "destination": PHONE}).status_code == 201
    assert (
        api.enroll(
            cid, {"type": "kba", "answers": {"first_pet": "Rex", "birth_city": "Oslo"}}
        ).status_code
        == 201
    )
    return totp


def approved_token(api: Api, cid: str = "c-1", channel: str = "chat", **start: Any) -> dict:
    totp = enrolled(api, cid)
    v = api.start(cid, channel, tier="gold", device=CHROME, **start).json
    api.check(v["verification_id"], "kba", answers={"first_pet": "rex", "birth_city": " OSLO"})
    r = api.check(v["verification_id"], "totp", code=totp.now())
    assert r.json["status"] == "approved", r.json
    return r.json


def test_a_two_factor_tier_needs_two_factors_then_issues_a_session(api: Api) -> None:
    totp = enrolled(api)
    r = api.start("c-1", "chat", tier="gold", device=CHROME)
    assert r.status_code == 201
    v = r.json
    assert v["status"] == "pending" and v["required"] == {
        "min_factors": 2,
        "require_possession": True,
    }
    assert set(v["available_factors"]) >= {"totp", "sms_otp", "kba"}
    first = api.check(v["verification_id"], "totp", code=totp.now()).json
    assert first["status"] == "pending" and first["satisfied_factors"] == ["totp"]
    assert "totp" not in first["available_factors"]
    second = api.check(
        v["verification_id"], "kba", answers={"first_pet": "REX", "birth_city": "oslo"}
    ).json
    assert second["status"] == "approved" and second["session_token"]
    claims = api.introspect(second["session_token"]).json
    assert claims["active"] and claims["acr"] == "2" and set(claims["amr"]) == {"totp", "kba"}
    assert claims["chn"] == "chat" and claims["tier"] == "gold" and claims["sub"] == "c-1"


def test_an_sms_code_is_sent_masked_and_works_once(api: Api) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    sent = api.challenge(vid, "sms_otp").json
    assert sent["delivery"] == {"channel": "sms", "to": "+86*******8000", "language": "zh"}
    code = api.last_code(PHONE)
    assert api.check(vid, "sms_otp", code=code).json["satisfied_factors"] == ["sms_otp"]
    again = api.check(vid, "sms_otp", code=code).json
    # The same code again (a double submit) is answered, not counted (resubmission.py)...
    assert again["satisfied_factors"] == ["sms_otp"] and again["remaining_attempts"] == 5
    # ...while any other code is judged: the used one is gone, so it counts.
    assert api.check(vid, "sms_otp", code="000000").json["remaining_attempts"] == 4


def test_kba_checks_only_the_questions_the_challenge_asked(api: Api) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.challenge(vid, "kba", questions=["birth_city"]).json["questions"] == ["birth_city"]
    r = api.check(vid, "kba", answers={"birth_city": "oslo", "first_pet": "wrong"}).json
    assert r["satisfied_factors"] == ["kba"]


def test_wrong_codes_lock_the_customer_at_max_attempts_then_423(api: Api) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    answers = [api.check(vid, "totp", code="000000").json for _ in range(5)]
    assert [a["remaining_attempts"] for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4]["status"] == "locked"
    r = api.check(vid, "totp", code="000000")
    assert r.status_code == 423 and int(r.headers["Retry-After"]) > 800
    other = api.start("c-1", "web", tier="gold").json["verification_id"]
    assert api.check(other, "kba", answers={"first_pet": "rex"}).status_code == 423


def test_failures_count_across_verifications_and_channels(api: Api) -> None:
    enrolled(api)
    for channel in ("chat", "web", "app", "chat"):
        vid = api.start("c-1", channel, tier="gold").json["verification_id"]
        api.check(vid, "totp", code="000000")
    vid = api.start("c-1", "email", tier="gold").json["verification_id"]
    assert api.check(vid, "totp", code="000000").json["status"] == "locked"


def test_the_approving_check_settles_its_attempt_and_forgives_earlier_failures(
    api: Api,
) -> None:
    # The check that completes a verification settles its attempt in the same round trip
    # as the approval: the failures before it must still be forgiven.
    api.tier("one", {**GOLD, "min_factors": 1})
    _, totp = api.enroll_totp("c-1")
    vid = api.start("c-1", "chat", tier="one").json["verification_id"]
    assert [api.check(vid, "totp", code="000000").json["remaining_attempts"] for _ in range(4)] == [
        4,
        3,
        2,
        1,
    ]
    done = api.check(vid, "totp", code=totp.now()).json
    assert done["status"] == "approved" and done["satisfied_factors"] == ["totp"]
    assert done["remaining_attempts"] == 1
    assert api.call("GET", f"/v1/verifications/{vid}").json["satisfied_factors"] == ["totp"]
    other = api.start("c-1", "web", tier="one").json["verification_id"]
    again = [api.check(other, "totp", code="000000").json for _ in range(4)]
    assert [a["status"] for a in again] == ["pending"] * 4  # four failures left, not none
    assert [a["remaining_attempts"] for a in again] == [4, 3, 2, 1]


def test_sends_are_throttled_with_retry_after_and_nothing_is_sent(api: Api) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.challenge(vid, "sms_otp").status_code == 200
    r = api.challenge(vid, "sms_otp")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 30
    assert len(api.messages(PHONE)) == 1


def test_an_active_token_is_reused_on_another_channel_without_a_challenge(api: Api) -> None:
    first = approved_token(api)  # bound to CHROME: reused from that browser
    r = api.start("c-1", "web", tier="gold", session_token=first["session_token"], device=CHROME)
    assert r.status_code == 200
    assert r.json["status"] == "approved" and r.json["reused"] is True
    assert r.json["sid"] == first["sid"]
    assert api.introspect(r.json["session_token"]).json["active"]


def test_step_up_on_voice_asks_only_for_the_missing_factor(api: Api) -> None:
    first = approved_token(api)  # the app on CHROME escalates to a call
    r = api.start("c-1", "voice", tier="gold", session_token=first["session_token"], device=CHROME)
    assert r.status_code == 201
    assert r.json["satisfied_factors"] == ["kba"] and r.json["available_factors"] == ["voice_otp"]
    vid = r.json["verification_id"]
    api.challenge(vid, "voice_otp")
    done = api.check(vid, "voice_otp", code=api.last_code(PHONE)).json
    assert done["status"] == "approved" and set(done["satisfied_factors"]) == {"voice_otp", "kba"}


def test_without_reuse_across_channels_a_token_works_only_on_its_channel(api: Api) -> None:
    first = approved_token(api)
    api.tier("gold", {**GOLD, "reuse_across_channels": False})
    token = {"session_token": first["session_token"], "device": CHROME}
    assert api.start("c-1", "web", tier="gold", **token).json["status"] == "pending"
    assert api.start("c-1", "chat", tier="gold", **token).json["reused"] is True


def test_a_trusted_device_counts_and_picks_up_the_active_session(api: Api) -> None:
    first = approved_token(api)
    trusted = api.call(
        "POST", "/v1/customers/c-1/devices", json={"verification_id": first["verification_id"]}
    )
    assert trusted.status_code == 201 and trusted.json["kind"] == "browser"
    bumped = {
        **CHROME,
        "user_agent": CHROME["user_agent"].replace("Chrome/120", "Chrome/121"),
        "ip": "203.0.113.99",
    }
    r = api.start("c-1", "web", tier="gold", device=bumped)
    assert r.json["status"] == "approved" and r.json["reused"] is True
    api.call("POST", "/v1/customers/c-1/sessions/revoke-all", "admin")
    r = api.start("c-1", "web", tier="gold", device=bumped)
    assert r.json["status"] == "pending" and r.json["satisfied_factors"] == ["trusted_device"]


def test_a_device_sending_only_its_browser_family_and_platform_is_not_trusted(
    api: Api,
) -> None:
    first = approved_token(api)
    api.call(
        "POST", "/v1/customers/c-1/devices", json={"verification_id": first["verification_id"]}
    )
    api.call("POST", "/v1/customers/c-1/sessions/revoke-all", "admin")
    bare = {"user_agent": CHROME["user_agent"], "platform": CHROME["platform"]}
    r = api.start("c-1", "web", tier="gold", device=bare)
    assert r.json["status"] == "pending" and r.json["satisfied_factors"] == []


def test_a_known_answer_to_one_factor_does_not_reset_the_guesses_at_another(api: Api) -> None:
    totp = enrolled(api)
    answers = []
    for _ in range(2):  # a new verification each time, four wrong codes, then the known KBA
        vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
        answers += [api.check(vid, "totp", code="000000").json["status"] for _ in range(4)]
        answers.append(
            api.check(vid, "kba", answers={"first_pet": "rex", "birth_city": "oslo"}).status_code
        )
    # The fifth wrong code in a row locks, whatever the KBA answers between them.
    assert answers[:6] == ["pending"] * 4 + [200, "locked"], answers
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.check(vid, "totp", code=totp.now()).status_code == 423


def test_a_device_bound_token_is_not_reused_from_another_device(api: Api) -> None:
    token = approved_token(api)["session_token"]  # issued to CHROME
    other = {**CHROME, "platform": "MacIntel", "screen": "2560x1600"}
    stolen = api.start("c-1", "web", tier="gold", device=other, session_token=token)
    assert stolen.status_code == 201 and stolen.json["status"] == "pending"
    assert stolen.json["satisfied_factors"] == []
    # Its own device still reuses it; without one it is not (test_identity_binding.py).
    again = api.start("c-1", "web", tier="gold", session_token=token, device=CHROME)
    assert again.status_code == 200 and again.json["reused"] is True


def test_a_voice_line_is_never_trusted(api: Api) -> None:
    enrolled(api)
    api.tier("gold", {**GOLD, "min_factors": 1})
    vid = api.start("c-1", "voice", tier="gold", device={"ani": PHONE}).json["verification_id"]
    api.check(vid, "kba", answers={"first_pet": "rex", "birth_city": "oslo"})
    api.challenge(vid, "voice_otp")
    assert api.check(vid, "voice_otp", code=api.last_code(PHONE)).json["status"] == "approved"
    r = api.call("POST", "/v1/customers/c-1/devices", json={"verification_id": vid})
    assert r.status_code == 409


def test_a_fingerprint_shared_by_many_customers_is_flagged_and_not_trusted(
    api: Api, redis: Any
) -> None:
    first = approved_token(api)
    api.call(
        "POST", "/v1/customers/c-1/devices", json={"verification_id": first["verification_id"]}
    )
    for n in range(2, 6):
        api.start(f"c-{n}", "chat", device=CHROME)
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.device.flagged") == 1
    api.call("POST", "/v1/customers/c-1/sessions/revoke-all", "admin")
    r = api.start("c-1", "chat", tier="gold", device=CHROME)
    assert r.json["satisfied_factors"] == []


def test_revocation_is_final_everywhere(api: Api) -> None:
    first = approved_token(api)
    token = first["session_token"]
    assert api.call("POST", "/v1/sessions/revoke", "ivr", json={"token": token}).status_code == 200
    assert api.introspect(token).json == {"active": False}
    assert api.start("c-1", "web", tier="gold", session_token=token).json["status"] == "pending"
    status = api.call("GET", "/v1/customers/c-1/verification-status?channel=chat", "ivr").json
    assert status["verified"] is False
    unknown = api.call("POST", "/v1/sessions/revoke", "ivr", json={"token": "junk"})
    assert unknown.status_code == 200


def test_delete_session_by_sid(api: Api) -> None:
    first = approved_token(api)
    assert api.call("DELETE", f"/v1/sessions/{first['sid']}", "agent").status_code == 204
    assert api.call("DELETE", f"/v1/sessions/{first['sid']}", "agent").status_code == 404
    assert api.introspect(first["session_token"]).json == {"active": False}


def test_verification_status_answers_for_the_channel_policy(api: Api) -> None:
    approved_token(api)
    chat = api.call("GET", "/v1/customers/c-1/verification-status?channel=web", "ivr").json
    assert chat["verified"] and chat["level"] == "2" and chat["sid"]
    voice = api.call(
        "GET", "/v1/customers/c-1/verification-status?channel=voice&ani=" + PHONE, "ivr"
    ).json
    assert voice["verified"] is False  # voice needs voice_otp in the gold tier


def test_introspection_with_another_device_is_not_active(api: Api) -> None:
    first = approved_token(api)
    other = {**CHROME, "platform": "MacIntel"}
    assert api.introspect(first["session_token"], device=other).json == {"active": False}
    assert api.introspect(first["session_token"], device=CHROME).json["active"]


def test_totp_enrollment_returns_uri_and_qr_and_listing_masks_secrets(api: Api) -> None:
    r = api.enroll("c-1", {"type": "totp"}).json
    assert r["otpauth_uri"].startswith("otpauth://totp/") and r["qr_png"].startswith("iVBOR")
    listed = api.call("GET", "/v1/customers/c-1/factors").json["items"][0]
    assert listed["status"] == "pending" and r["secret"] not in str(listed)
    wrong = api.call(
        "POST", f"/v1/customers/c-1/factors/{r['factor_id']}/confirm", json={"code": "000000"}
    )
    assert wrong.status_code == 400


def test_invalid_enrollments_are_400(api: Api) -> None:
    assert api.enroll("c-1", {"type": "sms_otp", "destination": "not a phone"}).status_code == 400
    assert api.enroll("c-1", {"type": "email_otp", "destination": "x@"}).status_code == 400
    assert api.enroll("c-1", {"type": "kba", "answers": {"Bad Id": "x"}}).status_code == 400
    assert api.enroll("c-1", {"type": "retina"}).status_code == 400
    assert api.enroll("c-1", {"type": "trusted_device"}).status_code == 400


def test_a_removed_factor_is_no_longer_available(api: Api) -> None:
    enrolled(api)
    kba = next(
        f for f in api.call("GET", "/v1/customers/c-1/factors").json["items"] if f["type"] == "kba"
    )
    assert api.call("DELETE", f"/v1/customers/c-1/factors/{kba['factor_id']}").status_code == 204
    v = api.start("c-1", "chat", tier="gold").json
    assert "kba" not in v["available_factors"]


def test_the_document_result_is_accepted_only_with_a_valid_signature(api: Api, app: Flask) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    ref = api.challenge(
        vid, "document", document={"type": "passport", "number": "X1234561", "images": []}
    ).json["reference"]
    service = app.extensions["sb"].extras["identity"]
    raw, headers = service.documents.signed({"reference": ref, "result": "approved"})
    forged = {**headers, "X-Switchboard-Signature": "sha256=" + "0" * 64}
    assert api.c.post("/v1/documents/callback", data=raw, headers=forged).status_code == 401
    assert api.c.post("/v1/documents/callback", data=raw, headers=headers).status_code == 204
    assert api.check(vid, "document").json["satisfied_factors"] == ["document"]


def test_a_late_result_for_an_earlier_document_is_refused_and_changes_nothing(
    api: Api, app: Flask
) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    refs = [
        api.challenge(
            vid, "document", document={"type": "passport", "number": number, "images": []}
        ).json["reference"]
        for number in ("X1234561", "X1234562")
    ]
    service = app.extensions["sb"].extras["identity"]
    raw, headers = service.documents.signed({"reference": refs[1], "result": "rejected"})
    assert api.c.post("/v1/documents/callback", data=raw, headers=headers).status_code == 204
    raw, headers = service.documents.signed({"reference": refs[0], "result": "approved"})
    late = api.c.post("/v1/documents/callback", data=raw, headers=headers)
    assert late.status_code == 409 and late.mimetype == "application/problem+json"
    assert "earlier document" in late.json["detail"]
    assert api.check(vid, "document").json["satisfied_factors"] == []


def test_a_document_check_before_its_result_is_409_and_costs_no_attempt(
    api: Api, redis: Any
) -> None:
    # Waiting for the verifier is not a wrong answer: no attempt, no failure, no lockout.
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    early = [api.check(vid, "document") for _ in range(6)]  # more than max_attempts (5)
    assert {r.status_code for r in early} == {409}
    assert early[0].mimetype == "application/problem+json"
    assert "no document was submitted" in early[0].json["detail"]
    api.challenge(vid, "document", document={"type": "passport", "number": "X1234561"})
    waiting = api.check(vid, "document")
    assert waiting.status_code == 409 and "not answered yet" in waiting.json["detail"]
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert "identity.verification.failed" not in types
    assert api.check(vid, "totp", code="000000").json["remaining_attempts"] == 4
    # A locked customer is answered 423 whatever the factor.
    for _ in range(4):
        api.check(vid, "totp", code="000000")
    assert api.check(vid, "document").status_code == 423


def test_the_export_holds_everything_masked_and_unknown_customers_are_empty(api: Api) -> None:
    approved_token(api)
    export = api.call("GET", "/v1/customers/c-1/export", "admin").json
    assert {f["type"] for f in export["factors"]} == {"totp", "sms_otp", "voice_otp", "kba"}
    assert "Rex" not in str(export) and PHONE not in str(export)
    assert len(export["sessions"]) == 1 and export["verifications"]
    empty = api.call("GET", "/v1/customers/nobody/export", "admin").json
    assert empty["factors"] == [] and empty["sessions"] == [] and empty["devices"] == []


def test_stats_report_reuse_and_durations(api: Api) -> None:
    first = approved_token(api)
    api.start("c-1", "web", tier="gold", session_token=first["session_token"], device=CHROME)
    api.start("c-1", "voice", tier="gold", session_token=first["session_token"], device=CHROME)
    stats = api.call("GET", "/v1/stats", "admin").json
    assert stats["requests"]["reused"] == 1 and stats["requests"]["asked_again"] == 1
    assert stats["repeat_verification_rate"] == 0.5
    assert stats["duration_ms"]["samples"] == 1
    metrics = api.c.get("/metrics").text
    assert "sb_identity_repeat_verification_ratio 0.5" in metrics


def test_a_verified_status_answer_counts_as_a_reuse_once_per_session_and_channel(
    api: Api, app: Flask, redis: Any
) -> None:
    first = approved_token(api)  # on chat
    api.start("c-1", "web", tier="gold")  # asked again: no token, no trusted device

    def status(channel: str) -> bool:
        url = f"/v1/customers/c-1/verification-status?channel={channel}"
        return bool(api.call("GET", url, "ivr").json["verified"])

    # An IVR asks several times during a call, another process asks too.
    assert all(status("web") for _ in range(3)) and status("chat")
    other = app.extensions["sb"].extras["identity"].store
    other._status_counted.clear()  # as a second worker: it has counted nothing itself
    assert status("web")
    stats = api.call("GET", "/v1/stats", "admin").json
    assert stats["requests"]["status_reused"] == 2  # web and chat, once each
    assert stats["requests"]["reused"] == 0 and stats["requests"]["asked_again"] == 1
    assert stats["repeat_verification_rate"] == 1 / 3
    api.call("DELETE", f"/v1/sessions/{first['sid']}", "admin")
    assert not status("app")  # not verified: nothing to count
    assert api.call("GET", "/v1/stats", "admin").json["requests"]["status_reused"] == 2


def test_an_expired_otp_is_refused(api: Api, app: Flask) -> None:
    enrolled(api)
    service = app.extensions["sb"].extras["identity"]
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    api.challenge(vid, "sms_otp")
    code = api.last_code(PHONE)
    service.clock = lambda: time.time() + 301
    assert api.check(vid, "sms_otp", code=code).json["satisfied_factors"] == []


def test_every_failed_check_and_the_lock_are_published_without_personal_data(
    api: Api, redis: Any
) -> None:
    enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    for _ in range(5):
        api.check(vid, "totp", code="000000")
    entries = [f for _, f in redis.xrange("sb:events:identity")]
    failed = [json.loads(f["data"]) for f in entries if f["type"] == "identity.verification.failed"]
    assert len(failed) == 5 and failed[0]["reason"] == "check_failed"
    assert failed[-1]["remaining_attempts"] == 0
    assert [f["type"] for f in entries].count("identity.verification.locked") == 1
    assert PHONE not in str(entries) and "Rex" not in str(entries)


def test_a_calling_number_shared_by_many_customers_is_not_verified_by_status(api: Api) -> None:
    approved_token(api)
    for n in range(2, 6):  # the same ANI presented for five customers within a day
        api.start(f"c-{n}", "voice", device={"ani": "+8613900000000", "carrier": f"c{n}"})
    status = api.call(
        "GET",
        "/v1/customers/c-1/verification-status",
        "ivr",
        query_string={"channel": "web", "ani": "+86 139 0000 0000"},
    ).json
    assert status["verified"] is False
    clean = api.call(
        "GET",
        "/v1/customers/c-1/verification-status",
        "ivr",
        query_string={"channel": "web", "ani": PHONE},
    ).json
    assert clean["verified"] is True


def test_a_session_verified_on_a_phone_line_counts_only_for_that_line(api: Api) -> None:
    enrolled(api)
    api.tier("gold", {**GOLD, "min_factors": 1})
    vid = api.start("c-1", "voice", tier="gold", device={"ani": PHONE}).json["verification_id"]
    api.challenge(vid, "voice_otp")
    assert api.check(vid, "voice_otp", code=api.last_code(PHONE)).json["status"] == "approved"

    def status(ani: str) -> bool:
        return api.call(
            "GET",
            "/v1/customers/c-1/verification-status",
            "ivr",
            query_string={"channel": "voice", "ani": ani},
        ).json["verified"]

    assert status("+86 138 0013 8000") is True
    assert status("+8613911112222") is False


def test_an_approval_publishes_approved_and_issued_once_in_the_envelope(
    api: Api, redis: Any
) -> None:
    first = approved_token(api)
    entries = [f for _, f in redis.xrange("sb:events:identity")]
    approved = [f for f in entries if f["type"] == "identity.verification.approved"]
    issued = [f for f in entries if f["type"] == "identity.session.issued"]
    assert len(approved) == 1 and len(issued) == 1
    assert set(approved[0]) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "source",
        "correlation_id",
        "data",
    }
    data = json.loads(approved[0]["data"])
    assert data == {
        "verification_id": first["verification_id"],
        "customer_id": "c-1",
        "channel": "chat",
        "tier": "gold",
        "factors": ["totp", "kba"],
        "sid": first["sid"],
        "reused": False,
    }
    assert json.loads(issued[0]["data"]) == {"sid": first["sid"], "customer_id": "c-1"}
