"""A double-submitted code is accepted once and never counted against the customer
(issue 16, item 9); the same code on another verification is still a replay."""

from __future__ import annotations

from typing import Any

from services.identity.adapters.redis.keys import ckey
from services.identity.bootstrap import Wiring
from services.identity.ports import LockState
from tests.integration.identity.conftest import GOLD, Api
from tests.integration.identity.test_identity_concurrency import in_parallel

PHONE = "+8613800138000"
ONE_TOTP = {**GOLD, "min_factors": 1, "allowed_factors": ["totp", "sms_otp", "kba"]}


def failed_events(redis: Any) -> list[dict[str, str]]:
    return [f for _, f in redis.xrange("sb:events:identity") if f["type"].endswith(".failed")]


def assert_nothing_counted(service: Wiring, redis: Any, cid: str = "c-1") -> None:
    assert failed_events(redis) == []
    assert service.store.lock_state(cid) == LockState(0, False)
    assert int(redis.get(ckey(cid, "fail")) or 0) == 0
    assert int(redis.get(ckey(cid, "streak")) or 0) == 0


def test_twenty_concurrent_submissions_of_one_totp_code_approve_once_and_count_nothing(
    api: Api, service: Wiring, redis: Any
) -> None:
    api.tier("gold", ONE_TOTP)
    _, totp = api.enroll_totp("c-1")
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    code = totp.now()
    answers = in_parallel(20, lambda i: api.check(vid, "totp", code=code))
    statuses = [r.status_code for r in answers]
    approved = [r for r in answers if r.status_code == 200 and r.json["status"] == "approved"]
    assert len(approved) == 1, statuses
    # the others were resubmissions of an approved verification: 409, as any later check
    assert sorted(statuses) == [200] + [409] * 19, statuses
    assert {r.json["type"].rsplit("/", 1)[-1] for r in answers if r.status_code == 409} == {
        "verification-closed"
    }
    assert_nothing_counted(service, redis)
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.verification.approved") == 1
    # not locked: a new verification of the customer is checked, not refused with 423
    again = api.start("c-1", "web", tier="gold").json["verification_id"]
    assert api.check(again, "totp", code="000000").status_code == 200


def test_twenty_concurrent_submissions_of_a_delivered_code_approve_once_and_count_nothing(
    api: Api, service: Wiring, redis: Any
) -> None:
    api.tier("gold", ONE_TOTP)
    assert api.enroll("c-1", {"type": "sms_otp", "destination": PHONE}).status_code == 201
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.challenge(vid, "sms_otp").status_code == 200
    code = api.last_code(PHONE)
    statuses = in_parallel(20, lambda i: api.check(vid, "sms_otp", code=code).status_code)
    assert sorted(statuses) == [200] + [409] * 19, statuses
    assert_nothing_counted(service, redis)


def test_a_code_that_satisfies_one_of_two_factors_answers_its_resubmissions_uncounted(
    api: Api, service: Wiring, redis: Any
) -> None:
    api.tier("gold", GOLD)  # two factors: the TOTP code alone leaves it pending
    _, totp = api.enroll_totp("c-1")
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    code = totp.now()
    answers = in_parallel(20, lambda i: api.check(vid, "totp", code=code))
    assert {r.status_code for r in answers} == {200}, [r.json for r in answers]
    assert all(r.json["status"] == "pending" for r in answers)
    assert all(r.json["satisfied_factors"] == ["totp"] for r in answers)
    assert_nothing_counted(service, redis)
    later = api.check(vid, "totp", code=code)  # a retry after the fact: the same answer
    assert later.status_code == 200 and later.json["satisfied_factors"] == ["totp"]
    assert_nothing_counted(service, redis)


def test_the_same_code_on_another_verification_is_a_replay_and_counts(
    api: Api, service: Wiring, redis: Any
) -> None:
    api.tier("gold", ONE_TOTP)
    _, totp = api.enroll_totp("c-1")
    first = api.start("c-1", "chat", tier="gold").json["verification_id"]
    code = totp.now()
    assert api.check(first, "totp", code=code).json["status"] == "approved"
    other = api.start("c-1", "web", tier="gold").json["verification_id"]
    replay = api.check(other, "totp", code=code)
    assert replay.status_code == 200 and replay.json["status"] == "pending"
    assert replay.json["remaining_attempts"] == 4
    assert len(failed_events(redis)) == 1


def test_a_wrong_code_resubmitted_counts_each_time(api: Api, redis: Any) -> None:
    api.tier("gold", ONE_TOTP)
    api.enroll_totp("c-1")
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    remaining = [api.check(vid, "totp", code="000000").json["remaining_attempts"] for _ in range(3)]
    assert remaining == [4, 3, 2]
    assert len(failed_events(redis)) == 3
