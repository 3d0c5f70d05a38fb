"""Attempt counting and lockout, as a rule the Redis script implements atomically.

An attempt is *reserved* before the code is evaluated (so N concurrent wrong
codes evaluate at most ``max_attempts``), then *settled*: a success refunds
the attempt and clears the customer's consecutive failures; a failure that
reaches ``max_attempts`` (per verification, or consecutive per customer
across verifications and channels) locks the customer for
``lockout_seconds``. ``max_attempts`` is capped at 100 (NIST SP 800-63B).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.identity.domain.policy import MAX_ATTEMPTS_CEILING


@dataclass(frozen=True)
class Counters:
    attempts: int = 0  # reserved attempts of this verification
    failures: int = 0  # consecutive failures of this customer
    locked_until: float = 0.0


@dataclass(frozen=True)
class Reservation:
    granted: bool
    locked: bool
    remaining: int  # attempts left after this one, if it fails
    retry_after: int = 0


def reserve(c: Counters, max_attempts: int, now: float) -> tuple[Reservation, Counters]:
    limit = min(max_attempts, MAX_ATTEMPTS_CEILING)
    if c.locked_until > now:
        return Reservation(False, True, 0, int(c.locked_until - now) + 1), c
    if c.attempts >= limit or c.failures >= limit:
        return Reservation(False, True, 0, 1), c
    after = replace(c, attempts=c.attempts + 1, failures=c.failures + 1)
    return Reservation(True, False, limit - max(after.attempts, after.failures)), after


def settle(
    c: Counters, success: bool, max_attempts: int, lockout_seconds: int, now: float
) -> tuple[bool, Counters]:
    """(locked now?, counters) after the evaluation of a reserved attempt."""
    limit = min(max_attempts, MAX_ATTEMPTS_CEILING)
    if success:
        return False, replace(c, attempts=max(0, c.attempts - 1), failures=0)
    if c.attempts >= limit or c.failures >= limit:
        return True, replace(c, failures=0, locked_until=now + lockout_seconds)
    return False, c
