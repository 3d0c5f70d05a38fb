"""Attempts and lockout (the rule of domain/lockout.py, in lua/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.identity.adapters.redis.base import _oldest_first
from services.identity.adapters.redis.factors import RedisFactors
from services.identity.adapters.redis.keys import (
    FAILURE_MEMORY,
    STREAK_MEMORY,
    VERIFICATION_TTL,
    attempt_keys,
    ckey,
    shard_of,
    vkey,
)
from services.identity.adapters.redis.scripts import lua
from services.identity.domain.lockout import FAILURE_CAP
from services.identity.ports import LockState, Reservation, Reserved, Settled, SettledSuccess
from shared.events import Event


class RedisAttempts(RedisFactors):
    def reserve_attempt(self, vid: str, cid: str, max_attempts: int) -> Reserved:
        """((granted, remaining, retry_after, held), the customer's factors if granted), in
        one round trip: see domain/lockout.py."""
        keys = attempt_keys(vid, cid)
        args = (max_attempts, VERIFICATION_TTL, FAILURE_MEMORY, FAILURE_CAP, STREAK_MEMORY)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVAL", lua("reserve"), len(keys), *keys, *args)
            pipe.hgetall(ckey(cid, "factors"))
            (granted, remaining, retry, held), stored = pipe.execute()
        factors = _oldest_first(self._open_factors(cid, stored)) if granted else []
        return Reserved(Reservation(bool(granted), int(remaining), int(retry), bool(held)), factors)

    def _settle_success_call(
        self, vid: str, cid: str, factor: str, max_attempts: int
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``lua/settle_success.lua``."""
        keys = [*attempt_keys(vid, cid), vkey(vid) + ":sat"]
        return keys, [max_attempts, factor, VERIFICATION_TTL, FAILURE_CAP, 0]

    def settle_success(
        self, vid: str, cid: str, factor: str, max_attempts: int, lockout_seconds: int
    ) -> SettledSuccess:
        """Settle a successful attempt and record the factor: one script call."""
        keys, args = self._settle_success_call(vid, cid, factor, max_attempts)
        remaining, satisfied = self._settle_success(keys=keys, args=args)
        return SettledSuccess(int(remaining), sorted(satisfied))

    def settle_attempt(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_seconds: int
    ) -> Settled:
        locked, remaining = self._settle(
            keys=attempt_keys(vid, cid),
            args=["1" if success else "0", max_attempts, lockout_seconds, FAILURE_CAP],
        )
        return Settled(bool(locked), int(remaining))

    def lock_remaining(self, cid: str) -> int:
        ttl = self.r.ttl(ckey(cid, "lock"))
        return int(ttl) if ttl and ttl > 0 else 0

    def lock_state(self, cid: str) -> LockState:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.ttl(ckey(cid, "lock"))
            pipe.get(ckey(cid, "streak"))
            ttl, streak = pipe.execute()
        return LockState(int(ttl) if ttl and ttl > 0 else 0, int(streak or 0) >= FAILURE_CAP)

    def unlock(self, cid: str, events: Sequence[Event]) -> bool:
        """Clear the lock, the failures and the streak; the events only if any was set."""
        keys = [ckey(cid, "lock"), ckey(cid, "fail"), ckey(cid, "streak")]
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(*keys)
            if not pipe.exists(*keys):
                return False
            pipe.multi()
            pipe.delete(*keys)
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()
        return True
