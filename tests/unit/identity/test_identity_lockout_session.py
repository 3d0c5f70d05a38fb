from __future__ import annotations

from services.identity.domain.lockout import Counters, reserve, settle
from services.identity.domain.policy import parse_policy
from services.identity.domain.session import SessionClaims, reuse_decision


def test_attempts_are_reserved_before_evaluation_up_to_the_limit() -> None:
    counters, granted = Counters(), 0
    for _ in range(20):
        reservation, counters = reserve(counters, 5, now=0)
        granted += reservation.granted
    assert granted == 5


def test_the_fifth_failure_locks_the_customer_for_the_lockout_period() -> None:
    counters = Counters()
    for i in range(5):
        reservation, counters = reserve(counters, 5, now=0)
        assert reservation.remaining == 4 - i
        locked, counters = settle(counters, False, 5, 900, now=0)
    assert locked and counters.locked_until == 900
    reservation, _ = reserve(counters, 5, now=100)
    assert reservation.locked and reservation.retry_after == 801


def test_a_success_refunds_the_attempt_and_clears_consecutive_failures() -> None:
    counters = Counters()
    _, counters = reserve(counters, 5, now=0)
    _, counters = settle(counters, False, 5, 900, now=0)
    _, counters = reserve(counters, 5, now=0)
    locked, counters = settle(counters, True, 5, 900, now=0)
    assert not locked and counters == Counters(attempts=1, failures=0)


def test_no_more_than_a_hundred_consecutive_failures_are_ever_evaluated() -> None:
    counters, granted = Counters(), 0
    for _ in range(150):
        reservation, counters = reserve(counters, 1000, now=0)
        granted += reservation.granted
    assert granted == 100


GOLD = parse_policy(
    {
        "min_factors": 2,
        "channels": {"voice": {"allowed_factors": ["voice_otp", "kba", "trusted_device"]}},
    }
)


def test_a_session_satisfying_the_new_channel_is_reused() -> None:
    decision = reuse_decision(GOLD, "chat", ("totp", "kba"), "web")
    assert decision is not None and decision.approved


def test_a_session_short_of_the_new_channel_asks_only_for_what_is_missing() -> None:
    decision = reuse_decision(GOLD, "voice", ("totp", "kba"), "chat")
    assert decision is not None and not decision.approved
    assert decision.counted == ("kba",) and decision.candidates == ("voice_otp",)


def test_without_reuse_across_channels_a_session_stays_on_its_channel() -> None:
    local = parse_policy({**GOLD.to_dict(), "reuse_across_channels": False})
    assert reuse_decision(local, "chat", ("totp", "kba"), "web") is None
    decision = reuse_decision(local, "web", ("totp", "kba"), "web")
    assert decision is not None and decision.approved


def test_claims_round_trip_and_carry_acr_as_a_string() -> None:
    claims = SessionClaims("iss", "c-1", "s-1", 10, 20, ("totp", "kba"), "gold", "chat", "fp")
    jwt_claims = claims.to_jwt()
    assert jwt_claims["acr"] == "2" and jwt_claims["cnf"] == {"fp": "fp"}
    assert SessionClaims.from_jwt(jwt_claims) == claims
