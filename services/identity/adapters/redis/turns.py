"""The store side of code turns (services/identity/resubmission.py) on Redis.

A turn is a marker per verification and code digest, ``<verification>:turn:<digest>``:
``busy`` while one check of that code is being judged, ``ok`` once it satisfied its
factor without approving the verification yet. Taking the turn is part of the attempt
reservation's script, so a check costs no extra round trip for it: a resubmission of a
code being judged neither reserves an attempt nor is judged a second time.
"""

from __future__ import annotations

import hashlib

from redis.exceptions import NoScriptError

from services.identity.adapters.redis.base import _oldest_first
from services.identity.adapters.redis.keys import (
    FAILURE_MEMORY,
    STREAK_MEMORY,
    VERIFICATION_TTL,
    attempt_keys,
    ckey,
    turn_key,
    vkey,
)
from services.identity.adapters.redis.scripts import lua
from services.identity.adapters.redis.store import RedisStore
from services.identity.domain.lockout import FAILURE_CAP
from services.identity.ports import Reservation, Reserved
from services.identity.resubmission import TurnHeld, TurnMarker, TurnReservation

# By its sha: the text (about 3 KB with its library) is sent and hashed by Redis only
# when Redis does not know it yet, not on every check.
_RESERVE_TURN_SHA = hashlib.sha1(lua("reserve_turn").encode()).hexdigest()


class RedisCodeTurns:
    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._reserve_turn = store.r.register_script(lua("reserve_turn"))

    def reserve(
        self, vid: str, cid: str, max_attempts: int, digest: str, busy_ms: int
    ) -> TurnReservation:
        """(None, the reservation, the customer's factors if granted) when this check
        takes the turn of its code; ((marker, verification status), ...) when another
        check holds it. One round trip, as ``RedisStore.reserve_attempt``."""
        s = self.store
        keys = [*attempt_keys(vid, cid), turn_key(vid, digest), vkey(vid)]
        args = (max_attempts, VERIFICATION_TTL, FAILURE_MEMORY, FAILURE_CAP, STREAK_MEMORY, busy_ms)
        with s.r.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVALSHA", _RESERVE_TURN_SHA, len(keys), *keys, *args)
            pipe.hgetall(ckey(cid, "factors"))
            answer, stored = pipe.execute(raise_on_error=False)
        if isinstance(answer, NoScriptError):  # nothing ran: the text once, then its sha
            answer = s.r.execute_command("EVAL", lua("reserve_turn"), len(keys), *keys, *args)
        for result in (answer, stored):
            if isinstance(result, Exception):
                raise result
        granted, remaining, retry, held = (int(x) for x in answer[:4])
        if granted < 0:
            held_by = TurnHeld(TurnMarker(str(answer[4])), str(answer[5]))
            return TurnReservation(held_by, Reserved(Reservation(False, 0, 0, False), []))
        factors = _oldest_first(s._open_factors(cid, stored)) if granted else []
        reservation = Reservation(bool(granted), remaining, retry, bool(held))
        return TurnReservation(None, Reserved(reservation, factors))

    def end(self, vid: str, digest: str, keep_seconds: int | None) -> None:
        """Release the turn (a wrong code: judged again next time), or keep it as ``ok``
        for ``keep_seconds`` (its factor is satisfied: a resubmission is answered)."""
        key = turn_key(vid, digest)
        if keep_seconds is None:
            self.store.r.delete(key)
        else:
            self.store.r.set(key, "ok", ex=keep_seconds)
