"""The store side of code turns (services/identity/resubmission.py) on Redis.

A turn is a marker per verification and code digest, ``<verification>:turn:<digest>``:
``busy`` while one check of that code is being judged, ``ok`` once it satisfied its
factor without approving the verification yet. Taking the turn is part of the attempt
reservation's script, so a check costs no extra round trip for it: a resubmission of a
code being judged neither reserves an attempt nor is judged a second time.
"""

from __future__ import annotations

from typing import Any

from services.identity.adapters.redis_store import (
    _RESERVE,
    FAILURE_CAP,
    FAILURE_MEMORY,
    STREAK_MEMORY,
    VERIFICATION_TTL,
    RedisStore,
    _oldest_first,
    ckey,
    vkey,
)

# KEYS: _RESERVE's four (attempts, failures, lock, streak), the turn marker, the
# verification hash. ARGV: _RESERVE's five, the busy marker's TTL (ms).
# -> _RESERVE's answer, the marker set when granted; or, when the turn is taken,
# {-1, 0, 0, 0, marker, the verification's status (JSON)} and nothing written.
_RESERVE_TURN = (
    "local function reserve()\n"
    + _RESERVE
    + """end
local held = redis.call('GET', KEYS[5])
if held then return {-1, 0, 0, 0, held, redis.call('HGET', KEYS[6], 'status') or ''} end
local r = reserve()
if r[1] == 1 then redis.call('SET', KEYS[5], 'busy', 'PX', ARGV[6]) end
return r
"""
)

Reservation = tuple[bool, int, int, bool]


def turn_key(vid: str, digest: str) -> str:
    return f"{vkey(vid)}:turn:{digest}"


class RedisCodeTurns:
    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._reserve_turn = store.r.register_script(_RESERVE_TURN)

    def reserve(
        self, vid: str, cid: str, max_attempts: int, digest: str, busy_ms: int
    ) -> tuple[tuple[str, str] | None, Reservation, list[dict[str, Any]]]:
        """(None, the reservation, the customer's factors if granted) when this check
        takes the turn of its code; ((marker, verification status), ...) when another
        check holds it. One round trip, as ``RedisStore.reserve_attempt``."""
        s = self.store
        keys = [*s._attempt_keys(vid, cid), turn_key(vid, digest), vkey(vid)]
        args = (max_attempts, VERIFICATION_TTL, FAILURE_MEMORY, FAILURE_CAP, STREAK_MEMORY, busy_ms)
        with s.r.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVAL", _RESERVE_TURN, len(keys), *keys, *args)
            pipe.hgetall(ckey(cid, "factors"))
            answer, stored = pipe.execute()
        granted, remaining, retry, held = (int(x) for x in answer[:4])
        if granted < 0:
            return (str(answer[4]), str(answer[5])), (False, 0, 0, False), []
        factors = _oldest_first(s._open_factors(cid, stored)) if granted else []
        return None, (bool(granted), remaining, retry, bool(held)), factors

    def end(self, vid: str, digest: str, keep_seconds: int | None) -> None:
        """Release the turn (a wrong code: judged again next time), or keep it as ``ok``
        for ``keep_seconds`` (its factor is satisfied: a resubmission is answered)."""
        key = turn_key(vid, digest)
        if keep_seconds is None:
            self.store.r.delete(key)
        else:
            self.store.r.set(key, "ok", ex=keep_seconds)
