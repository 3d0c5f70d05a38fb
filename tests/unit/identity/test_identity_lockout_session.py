from __future__ import annotations

from dataclasses import replace

from services.identity.domain.lockout import FAILURE_CAP, Counters, reserve, settle, unlock
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
    assert reservation.locked and reservation.retry_after == 800 and not reservation.held


def test_a_success_refunds_the_attempt_and_clears_consecutive_failures() -> None:
    counters = Counters()
    _, counters = reserve(counters, 5, now=0)
    _, counters = settle(counters, False, 5, 900, now=0)
    _, counters = reserve(counters, 5, now=0)
    locked, counters = settle(counters, True, 5, 900, now=0)
    assert not locked and counters == Counters(attempts=1, failures=0)


def test_a_success_that_leaves_the_verification_pending_clears_nothing() -> None:
    counters = Counters()
    for _ in range(4):  # four wrong codes...
        _, counters = reserve(counters, 5, now=0)
        _, counters = settle(counters, False, 5, 900, now=0)
    _, counters = reserve(counters, 5, now=0)  # ...then a right answer to another factor
    _, counters = settle(counters, True, 5, 900, now=0, approves=False)
    assert counters == Counters(attempts=4, failures=4, streak=4)
    counters = replace(counters, attempts=0)  # a new verification: one more wrong code locks
    _, counters = reserve(counters, 5, now=0)
    locked, counters = settle(counters, False, 5, 900, now=0)
    assert locked


def test_no_more_than_a_hundred_consecutive_failures_are_ever_evaluated() -> None:
    # An attacker sits out every lockout and opens a new verification each time.
    counters, evaluated, now = Counters(), 0, 0.0
    for _ in range(1000):
        reservation, counters = reserve(counters, 3, now)
        if reservation.granted:
            evaluated += 1
            _, counters = settle(counters, False, 3, 900, now)
        elif reservation.held:
            now += 365 * 86400  # time never lifts this lock
        else:
            now, counters = max(now, counters.locked_until), replace(counters, attempts=0)
    assert evaluated == FAILURE_CAP == 100
    assert counters.held and reserve(counters, 3, now)[0].retry_after == 0


def test_a_lockout_starts_a_new_count_but_not_a_new_streak() -> None:
    counters = Counters()
    for _ in range(5):
        _, counters = reserve(counters, 5, now=0)
        locked, counters = settle(counters, False, 5, 900, now=0)
    assert locked and counters.failures == 0 and counters.streak == 5


def test_only_a_success_or_an_administrator_resets_the_streak() -> None:
    held = Counters(attempts=0, failures=2, locked_until=50.0, streak=FAILURE_CAP)
    assert reserve(held, 5, now=10**9)[0].held
    assert unlock(held) == Counters()
    counters = Counters(streak=42)
    _, counters = reserve(counters, 5, now=0)
    _, counters = settle(counters, True, 5, 900, now=0)
    assert counters.streak == 0


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
