"""Attempt counting and lockout, as a rule the Redis scripts implement atomically.

An attempt is *reserved* before the code is evaluated (so N concurrent wrong
codes evaluate at most ``max_attempts``) and counted as a failure in advance,
then *settled*:

- a success refunds the attempt; a success that approves the verification
  also clears the customer's consecutive failures and their streak (a factor
  that leaves the verification pending proves nothing about the others: a
  known answer to the weakest must not reset the count of guesses at the
  strongest);
- a failure that reaches ``max_attempts`` (per verification, or consecutive
  per customer across verifications and channels) locks the customer for
  ``lockout_seconds`` and starts a new count of failures - but not a new
  streak;
- the streak counts consecutive failures across lockouts. Once it reaches
  ``FAILURE_CAP`` (100, NIST SP 800-63B 5.2.2) no further attempt is
  evaluated: the customer is *held* until an administrator unlocks them
  (``unlock``); time alone never lifts it.

``max_attempts`` is capped at ``FAILURE_CAP`` too. How long the store remembers
failures after the last one (a day for the per-lockout count, a month for the
streak) is the store's business: this model assumes neither has elapsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from services.identity.domain.policy import MAX_ATTEMPTS_CEILING

FAILURE_CAP = MAX_ATTEMPTS_CEILING  # consecutive failures ever evaluated without an admin


@dataclass(frozen=True)
class Counters:
    attempts: int = 0  # reserved attempts of this verification
    failures: int = 0  # consecutive failures of this customer since their last lockout
    locked_until: float = 0.0
    streak: int = 0  # consecutive failures of this customer; only an approval resets it

    @property
    def held(self) -> bool:
        return self.streak >= FAILURE_CAP


@dataclass(frozen=True)
class Reservation:
    granted: bool
    locked: bool
    remaining: int  # attempts left after this one, if it fails
    retry_after: int = 0  # 0 when held: no time lifts that lock
    held: bool = False  # locked until an administrator unlocks


def remaining(c: Counters, max_attempts: int) -> int:
    """Failures left before a lock, as a settlement that did not lock answers it."""
    limit = min(max_attempts, FAILURE_CAP)
    return max(0, min(limit - max(c.attempts, c.failures), FAILURE_CAP - c.streak))


def reserve(c: Counters, max_attempts: int, now: float) -> tuple[Reservation, Counters]:
    limit = min(max_attempts, FAILURE_CAP)
    if c.held:
        return Reservation(False, True, 0, 0, held=True), c
    if c.locked_until > now:
        return Reservation(False, True, 0, math.ceil(c.locked_until - now)), c
    if c.attempts >= limit or c.failures >= limit:
        return Reservation(False, True, 0, 1), c
    after = replace(c, attempts=c.attempts + 1, failures=c.failures + 1, streak=c.streak + 1)
    return Reservation(True, False, remaining(after, max_attempts)), after


def settle(
    c: Counters,
    success: bool,
    max_attempts: int,
    lockout_seconds: int,
    now: float,
    *,
    approves: bool = True,
) -> tuple[bool, Counters]:
    """(locked now?, counters) after the evaluation of a reserved attempt; ``approves``:
    the success completes the verification."""
    limit = min(max_attempts, FAILURE_CAP)
    if success:
        if approves:
            return False, replace(c, attempts=max(0, c.attempts - 1), failures=0, streak=0)
        # Only what the reservation counted in advance is given back.
        return False, replace(
            c,
            attempts=max(0, c.attempts - 1),
            failures=max(0, c.failures - 1),
            streak=max(0, c.streak - 1),
        )
    if c.held:
        return True, c
    if c.attempts >= limit or c.failures >= limit:
        return True, replace(c, failures=0, locked_until=now + lockout_seconds)
    return False, c


def unlock(c: Counters) -> Counters:
    """What an administrator's unlock leaves: the verification's own attempts."""
    return replace(c, failures=0, locked_until=0.0, streak=0)
