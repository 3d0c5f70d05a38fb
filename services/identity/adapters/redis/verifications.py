"""Verifications: creation, state, challenges, approval (one script each)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from services.identity.adapters.redis.attempts import RedisAttempts
from services.identity.adapters.redis.base import _j, _oldest_first
from services.identity.adapters.redis.keys import (
    DURATIONS_KEPT,
    POLICIES,
    VERIFICATION_TTL,
    P,
    ckey,
    shard_of,
    shard_of_id,
    skey,
    stats_keys,
    tag,
    totp_key,
    vkey,
)
from services.identity.adapters.redis.scripts import lua
from services.identity.domain.errors import StepTaken
from services.identity.ports import FreshStart, Snapshot
from shared.events import Event

_START_SHA = hashlib.sha1(lua("start").encode()).hexdigest()


class RedisVerifications(RedisAttempts):
    def create_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        satisfied: Iterable[str],
        events: list[Event],
        counters: Mapping[str, int] | None = None,
    ) -> None:
        cid = fields["customer_id"]
        shard = shard_of(cid)
        stream = self._event_stream(shard)
        payload = {
            "fields": {k: _j(v) for k, v in fields.items()},
            "sat": list(satisfied),
            "counters": dict(counters or {}),
            "ttl": VERIFICATION_TTL,
            **self._script_events(events),
        }
        keys = [vkey(vid), vkey(vid) + ":sat", ckey(cid, "vers"), stats_keys(shard)[0]]
        self._create(
            keys=[*keys, *([stream] if stream else [])],
            args=[vid, _j(payload)],
        )

    def start_fresh(
        self,
        vid: str,
        fields: Mapping[str, Any],
        events: list[Event],
        counters: Mapping[str, int],
        fresh: tuple[str, str],
    ) -> FreshStart:
        """Create the verification ``fields`` describe (no device, no session: nothing is
        satisfied) unless the customer's projected tier is not ``fields["tier"]``; and read
        what a start reads (``snapshot``), all in one round trip (see ``lua/start.lua``).
        ``fresh``: the counters of a customer without and with an active session."""
        cid = fields["customer_id"]
        shard = shard_of(cid)
        stream = self._event_stream(shard)
        payload = {
            "fields": {k: _j(v) for k, v in fields.items()},
            "sat": [],
            "counters": dict(counters),
            "ttl": VERIFICATION_TTL,
            "fresh": fresh[0],
            "again": fresh[1],
            **self._script_events(events),
        }
        keys = [
            *(ckey(cid, name) for name in ("profile", "sessions", "factors")),
            vkey(vid),
            vkey(vid) + ":sat",
            ckey(cid, "vers"),
            stats_keys(shard)[0],
            *([stream] if stream else []),
        ]
        args = [vid, _j(payload), fields["tier"], tag(shard) + "s:", f"{shard:02x}"]
        with self.r.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVALSHA", _START_SHA, len(keys), *keys, *args)
            pipe.hgetall(POLICIES)
            answer, policies = pipe.execute(raise_on_error=False)
        if isinstance(answer, NoScriptError):  # nothing ran: the text once, then its sha
            answer = self.r.execute_command("EVAL", lua("start"), len(keys), *keys, *args)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(policies, Exception):
            raise policies
        created, tier, sids, flat = answer
        stored = dict(zip(flat[::2], flat[1::2], strict=True))
        rows = _oldest_first(self._open_factors(cid, stored))
        profile = {"tier": tier} if tier else {}
        return FreshStart(bool(created), Snapshot(profile, sorted(sids), rows, policies))

    def verification(self, vid: str) -> dict[str, Any] | None:
        key = vkey(vid)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.smembers(key + ":sat")
            pipe.get(key + ":att")
            pipe.hgetall(POLICIES)  # small; saves the policy read a round trip
            raw, sat, att, policies = pipe.execute()
        if not raw:
            return None
        out = {k: json.loads(v) for k, v in raw.items()}
        out["satisfied"] = sorted(sat)
        out["attempts"] = int(att or 0)
        out["_policies"] = policies
        return out

    def update_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        add_satisfied: Iterable[str] = (),
        events: Sequence[Event] = (),
    ) -> list[str]:
        """Set fields and add satisfied factors; returns the satisfied set after."""
        key = vkey(vid)
        with self.r.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(key, mapping={k: _j(v) for k, v in fields.items()})
            add = list(add_satisfied)
            if add:
                pipe.sadd(key + ":sat", *add)
                pipe.expire(key + ":sat", VERIFICATION_TTL)
            pipe.smembers(key + ":sat")
            self._stage(pipe, events, shard_of_id(vid))
            results = pipe.execute()
        staged = len(events) if self._event_stream(0) else 0
        return sorted(results[-1 - staged] if staged else results[-1])

    def set_challenge(
        self,
        vid: str,
        factor: str,
        state: Mapping[str, Any],
        *,
        merge: bool = False,
        only_if_reference: str | None = None,
    ) -> bool:
        """One factor's challenge state, without losing a concurrent write of another
        factor's (optimistic: WATCH the verification, retried on a conflict). ``merge``
        updates the factor's state instead of replacing it; ``only_if_reference`` applies
        only while that is still the factor's reference. False: not applied."""
        key = vkey(vid)

        def apply(pipe: Any) -> bool:
            raw = pipe.hget(key, "challenges")
            if raw is None:
                return False  # the verification has expired
            challenges = json.loads(raw)
            current = challenges.get(factor) or {}
            if only_if_reference is not None and current.get("reference") != only_if_reference:
                return False
            challenges[factor] = {**current, **state} if merge else dict(state)
            pipe.multi()
            pipe.hset(key, "challenges", _j(challenges))
            return True

        return bool(self.r.transaction(apply, key, value_from_callable=True))

    def claim_once(self, key: str, ttl: int) -> bool:
        """True for the first caller only (approval, flag events...)."""
        return bool(self.r.set(P + key, "1", nx=True, ex=ttl))

    def snapshot(self, cid: str) -> Snapshot:
        """What starting a verification needs, in one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(ckey(cid, "profile"))
            pipe.smembers(ckey(cid, "sessions"))
            pipe.hgetall(ckey(cid, "factors"))
            pipe.hgetall(POLICIES)
            profile, sids, factors, policies = pipe.execute()
        rows = _oldest_first(self._open_factors(cid, factors))
        return Snapshot(profile, sorted(sids), rows, policies)

    def commit_approval(
        self,
        session: dict[str, Any],
        ttl: int,
        vid: str,
        fields: Mapping[str, Any],
        events: Sequence[Event],
        counters: Mapping[str, int],
        duration_ms: float | None,
        settle: tuple[str, int] | None = None,
        claim: tuple[str, int] | None = None,
    ) -> bool:
        """Session and verification state, plus - for the first caller only - events and KPIs.

        One script call; returns True for the first caller of this verification. With
        ``settle`` (factor, max_attempts), the successful attempt that approves is settled
        first (as ``settle_success``) in the same round trip. With ``claim`` (TOTP factor
        id, time step) as well, the step is accepted first (as ``accept_step``) and
        nothing is written when it was accepted before: ``StepTaken``. Only where
        ``claims_with_approval`` says the keys share a slot.
        """
        cid, sid = session["customer_id"], session["sid"]
        shard = shard_of(cid)
        stream = self._event_stream(shard)
        payload = {
            "session": _j(session),
            "sid": sid,
            "ttl": max(1, int(ttl)),
            "fields": {k: _j(v) for k, v in fields.items()},
            "counters": dict(counters) or {"approved": 0},  # cjson: {} would decode as []
            "duration": round(duration_ms or 0.0, 1),
            **self._script_events(events),
        }
        keys = [
            f"{tag(shard_of_id(vid))}approved:{vid}",
            skey(sid),
            ckey(cid, "sessions"),
            vkey(vid),
            *stats_keys(shard),
            *([stream] if stream else []),
        ]
        args = [_j(payload), DURATIONS_KEPT]
        if settle is None:
            return bool(self._approve(keys=keys, args=args))
        settle_keys, settle_args = self._settle_success_call(vid, cid, *settle)
        if claim is not None:
            fid, step = claim
            answer = self._claim_settle_approve(
                keys=[totp_key(fid), *settle_keys, *keys],
                args=[*args, step, settle[0], VERIFICATION_TTL],
            )
            if int(answer) < 0:
                raise StepTaken(fid)
            return bool(answer)
        approving = [*settle_args[:-1], 1]  # clears the earlier failures and streak
        with self.r.pipeline(transaction=False) as pipe:
            # EVAL, not EVALSHA: a NOSCRIPT retry would settle the attempt twice.
            pipe.execute_command(
                "EVAL", lua("settle_success"), len(settle_keys), *settle_keys, *approving
            )
            pipe.execute_command("EVAL", lua("approve"), len(keys), *keys, *args)
            _, first = pipe.execute()
        return bool(first)
