"""Everything identity keeps, in Redis. Atomic parts are Lua scripts.

Key layout (``idn:`` prefix; ``{c}`` a customer id, ``{v}`` a verification id):

    idn:policies                 hash tier -> policy JSON
    idn:audit                    stream of policy changes (who, when, before, after)
    idn:c:{c}:profile            hash tier, language (projection of crm.profile.*)
    idn:c:{c}:factors            hash factor_id -> factor JSON (hashes/secrets, never codes)
    idn:c:{c}:devices            hash device_id -> trusted device JSON
    idn:c:{c}:sessions           set of sids          idn:s:{sid}  session JSON (TTL)
    idn:c:{c}:vers               set of verification ids
    idn:c:{c}:fps                set of fingerprints seen for the customer
    idn:c:{c}:fail / :lock       consecutive failures / lockout marker (TTL)
    idn:v:{v}                    hash: the verification     idn:v:{v}:sat  set of factors
    idn:v:{v}:att                attempts reserved          idn:v:{v}:code:{factor}  OTP hash
    idn:totp:{factor_id}         last accepted TOTP step
    idn:thr:{destination hmac}   zset of send times (throttle)
    idn:fp:{fingerprint}         zset customer -> last seen (risk)
    idn:stats                    hash of KPI counters     idn:stats:dur  recent durations
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.events import Event

P = "idn:"
AUDIT = P + "audit"
POLICIES = P + "policies"
STATS = P + "stats"
DURATIONS = P + "stats:dur"
DURATIONS_KEPT = 10_000
VERIFICATION_TTL = 3600
FAILURE_MEMORY = 86400  # consecutive failures are forgotten a day after the last one

# KEYS: attempts, failures, lock. ARGV: max_attempts, attempts_ttl, failures_ttl
# -> {granted (1/0), remaining, retry_after}
_RESERVE = """
local lock_ttl = redis.call('PTTL', KEYS[3])
if lock_ttl > 0 then return {0, 0, math.ceil(lock_ttl / 1000)} end
local limit = math.min(tonumber(ARGV[1]), 100)
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if a >= limit or f >= limit then return {0, 0, 1} end
a = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
f = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {1, limit - math.max(a, f), 0}
"""

# KEYS: attempts, failures, lock. ARGV: success (1/0), max_attempts, lockout_seconds
# -> {locked (1/0), remaining}
_SETTLE = """
local limit = math.min(tonumber(ARGV[2]), 100)
if ARGV[1] == '1' then
  local a = tonumber(redis.call('GET', KEYS[1]) or '0')
  if a > 0 then redis.call('DECR', KEYS[1]) end
  redis.call('DEL', KEYS[2])
  return {0, limit - math.max(a - 1, 0)}
end
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if a >= limit or f >= limit then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return {1, 0}
end
return {0, limit - math.max(a, f)}
"""

# KEYS: last step. ARGV: step, ttl. A step is accepted once, and never one older.
_ACCEPT_STEP = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS: throttle zset. ARGV: unused, window_ms, max_sends, cooldown_ms, member
# -> 0 (send now, recorded) or seconds to wait. The server's clock orders the sends,
# so concurrent callers (and hosts with skewed clocks) cannot slip past the cooldown.
_THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and now - tonumber(last[2]) < tonumber(ARGV[4]) then
  return math.ceil((tonumber(last[2]) + tonumber(ARGV[4]) - now) / 1000)
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.ceil((tonumber(first[2]) + tonumber(ARGV[2]) - now) / 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""

# KEYS: code key. ARGV: digest. Deletes the code only if it is the one given: single use.
_CONSUME_CODE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v)['digest'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


# KEYS: profile, session set, policies. ARGV: session key prefix.
# -> {projected tier or '', [session JSON...], [tier, policy, ...]}: one round trip.
_STATUS = """
local tier = redis.call('HGET', KEYS[1], 'tier') or ''
local sessions = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('GET', ARGV[1] .. sid)
  if v then sessions[#sessions + 1] = v end
end
return {tier, sessions, redis.call('HGETALL', KEYS[3])}
"""


# KEYS: claim, session, customer's session set, verification hash, stats, durations, stream.
# ARGV[1]: JSON {session, ttl, fields, counters, duration, events: [[k, v, ...]], maxlen}.
# Always stores the session and the verification state; the first caller for a
# verification (the claim) also appends the events and counts the KPIs. One round trip.
_APPROVE = """
local a = cjson.decode(ARGV[1])
local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', 3600)
redis.call('SET', KEYS[2], a.session, 'EX', a.ttl)
redis.call('SADD', KEYS[3], a.sid)
redis.call('EXPIRE', KEYS[3], 172800)
for k, v in pairs(a.fields) do redis.call('HSET', KEYS[4], k, v) end
if not first then return 0 end
for name, n in pairs(a.counters) do redis.call('HINCRBY', KEYS[5], name, n) end
redis.call('LPUSH', KEYS[6], a.duration)
redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[2]) - 1)
if KEYS[7] ~= '' then
  for _, fields in ipairs(a.events) do
    redis.call('XADD', KEYS[7], 'MAXLEN', '~', a.maxlen, '*', unpack(fields))
  end
end
return 1
"""


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class RedisStore:
    def __init__(self, redis: Any, publisher: Any = None) -> None:
        self.r = redis
        self.publisher = publisher
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._accept_step = redis.register_script(_ACCEPT_STEP)
        self._throttle = redis.register_script(_THROTTLE)
        self._consume_code = redis.register_script(_CONSUME_CODE)
        self._status = redis.register_script(_STATUS)
        self._approve = redis.register_script(_APPROVE)

    # -- events ---------------------------------------------------------------
    def _stage(self, pipe: Any, events: Iterable[Event]) -> None:
        if self.publisher is not None:
            for event in events:
                self.publisher.stage(pipe, event)

    def publish(self, events: Sequence[Event]) -> None:
        if events and self.publisher is not None:
            self.publisher.publish_many(events)

    # -- policies and audit ---------------------------------------------------
    def get_policy(self, tier: str) -> dict[str, Any] | None:
        raw = self.r.hget(POLICIES, tier)
        return json.loads(raw) if raw else None

    def list_policies(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.r.hgetall(POLICIES).items()}

    def save_policy(
        self, tier: str, policy: dict[str, Any] | None, audit: dict[str, Any], events: list[Event]
    ) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            if policy is None:
                pipe.hdel(POLICIES, tier)
            else:
                pipe.hset(POLICIES, tier, _j(policy))
            pipe.xadd(AUDIT, {"entry": _j(audit)}, maxlen=100_000, approximate=True)
            self._stage(pipe, events)
            pipe.execute()

    def audit(self, limit: int, before: str | None) -> tuple[list[dict[str, Any]], str | None]:
        upper = f"({before}" if before else "+"
        rows = self.r.xrevrange(AUDIT, max=upper, min="-", count=limit + 1)
        items = [{"id": eid, **json.loads(f["entry"])} for eid, f in rows[:limit]]
        return items, (rows[limit - 1][0] if len(rows) > limit else None)

    # -- CRM projection -------------------------------------------------------
    def profile(self, cid: str) -> dict[str, str]:
        return self.r.hgetall(f"{P}c:{cid}:profile")

    def stage_profile(self, pipe: Any, cid: str, fields: Mapping[str, str]) -> None:
        pipe.hset(f"{P}c:{cid}:profile", mapping=dict(fields))

    # -- factors --------------------------------------------------------------
    def factors(self, cid: str) -> list[dict[str, Any]]:
        rows = [json.loads(v) for v in self.r.hvals(f"{P}c:{cid}:factors")]
        return sorted(rows, key=lambda f: (f["created_at"], f["factor_id"]))

    def factor(self, cid: str, fid: str) -> dict[str, Any] | None:
        raw = self.r.hget(f"{P}c:{cid}:factors", fid)
        return json.loads(raw) if raw else None

    def save_factor(self, cid: str, record: dict[str, Any], events: list[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(f"{P}c:{cid}:factors", record["factor_id"], _j(record))
            self._stage(pipe, events)
            pipe.execute()

    def delete_factor(self, cid: str, fid: str, events: list[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{P}c:{cid}:factors", fid)
            pipe.delete(f"{P}totp:{fid}")
            self._stage(pipe, events)
            removed = pipe.execute()[0]
        return bool(removed)

    def accept_step(self, fid: str, step: int) -> bool:
        return bool(self._accept_step(keys=[f"{P}totp:{fid}"], args=[step]))

    # -- verifications --------------------------------------------------------
    def create_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        satisfied: Iterable[str],
        events: list[Event],
        counters: Mapping[str, int] | None = None,
    ) -> None:
        key = f"{P}v:{vid}"
        cid = fields["customer_id"]
        with self.r.pipeline(transaction=True) as pipe:
            for name, n in (counters or {}).items():
                pipe.hincrby(STATS, name, n)
            pipe.hset(key, mapping={k: _j(v) for k, v in fields.items()})
            pipe.expire(key, VERIFICATION_TTL)
            sat = list(satisfied)
            if sat:
                pipe.sadd(key + ":sat", *sat)
                pipe.expire(key + ":sat", VERIFICATION_TTL)
            pipe.sadd(f"{P}c:{cid}:vers", vid)
            pipe.expire(f"{P}c:{cid}:vers", VERIFICATION_TTL)
            self._stage(pipe, events)
            pipe.execute()

    def verification(self, vid: str) -> dict[str, Any] | None:
        key = f"{P}v:{vid}"
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
        key = f"{P}v:{vid}"
        with self.r.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(key, mapping={k: _j(v) for k, v in fields.items()})
            add = list(add_satisfied)
            if add:
                pipe.sadd(key + ":sat", *add)
                pipe.expire(key + ":sat", VERIFICATION_TTL)
            pipe.smembers(key + ":sat")
            self._stage(pipe, events)
            results = pipe.execute()
        return sorted(results[-1 - len(events)] if events else results[-1])

    def claim_once(self, key: str, ttl: int) -> bool:
        """True for the first caller only (approval, flag events...)."""
        return bool(self.r.set(P + key, "1", nx=True, ex=ttl))

    # -- attempts and lockout -------------------------------------------------
    def _attempt_keys(self, vid: str, cid: str) -> list[str]:
        return [f"{P}v:{vid}:att", f"{P}c:{cid}:fail", f"{P}c:{cid}:lock"]

    def reserve_attempt(self, vid: str, cid: str, max_attempts: int) -> tuple[bool, int, int]:
        granted, remaining, retry = self._reserve(
            keys=self._attempt_keys(vid, cid), args=[max_attempts, VERIFICATION_TTL, FAILURE_MEMORY]
        )
        return bool(granted), int(remaining), int(retry)

    def settle_success(
        self, vid: str, cid: str, factor: str, max_attempts: int, lockout_seconds: int
    ) -> tuple[int, list[str]]:
        """Settle a successful attempt and record the factor, in one round trip."""
        key = f"{P}v:{vid}:sat"
        with self.r.pipeline(transaction=False) as pipe:
            self._settle(
                keys=self._attempt_keys(vid, cid),
                args=["1", max_attempts, lockout_seconds],
                client=pipe,
            )
            pipe.sadd(key, factor)
            pipe.expire(key, VERIFICATION_TTL)
            pipe.smembers(key)
            (_locked, remaining), _, _, satisfied = pipe.execute()
        return int(remaining), sorted(satisfied)

    def settle_attempt(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_seconds: int
    ) -> tuple[bool, int]:
        locked, remaining = self._settle(
            keys=self._attempt_keys(vid, cid),
            args=["1" if success else "0", max_attempts, lockout_seconds],
        )
        return bool(locked), int(remaining)

    def lock_remaining(self, cid: str) -> int:
        ttl = self.r.ttl(f"{P}c:{cid}:lock")
        return int(ttl) if ttl and ttl > 0 else 0

    # -- delivered codes and throttling ---------------------------------------
    def store_code(self, vid: str, factor: str, record: dict[str, Any], ttl: int) -> None:
        self.r.set(f"{P}v:{vid}:code:{factor}", _j(record), ex=max(1, int(ttl)))

    def peek_code(self, vid: str, factor: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{P}v:{vid}:code:{factor}")
        return json.loads(raw) if raw else None

    def consume_code(self, vid: str, factor: str, digest: str) -> bool:
        return bool(self._consume_code(keys=[f"{P}v:{vid}:code:{factor}"], args=[digest]))

    def throttle(self, dest_key: str, window: int, max_sends: int, cooldown: int) -> int:
        now_ms = int(time.time() * 1000)
        member = f"{now_ms}-{time.perf_counter_ns()}"
        return int(
            self._throttle(
                keys=[f"{P}thr:{dest_key}"],
                args=[now_ms, window * 1000, max_sends, cooldown * 1000, member],
            )
        )

    # -- sessions -------------------------------------------------------------
    def save_session(self, session: dict[str, Any], ttl: int, events: Sequence[Event]) -> None:
        cid, sid = session["customer_id"], session["sid"]
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(f"{P}s:{sid}", _j(session), ex=max(1, ttl))
            pipe.sadd(f"{P}c:{cid}:sessions", sid)
            pipe.expire(f"{P}c:{cid}:sessions", 86400 * 2)
            self._stage(pipe, events)
            pipe.execute()

    def session(self, sid: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{P}s:{sid}")
        return json.loads(raw) if raw else None

    def sessions_of(self, cid: str) -> list[dict[str, Any]]:
        sids = sorted(self.r.smembers(f"{P}c:{cid}:sessions"))
        if not sids:
            return []
        values = self.r.mget([f"{P}s:{sid}" for sid in sids])
        gone = [sid for sid, v in zip(sids, values, strict=True) if v is None]
        if gone:
            self.r.srem(f"{P}c:{cid}:sessions", *gone)
        return [json.loads(v) for v in values if v is not None]

    def revoke_session(self, sid: str, events_for: Any) -> dict[str, Any] | None:
        """Delete the session; ``events_for(session)`` gives the events to publish with it."""
        key = f"{P}s:{sid}"
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            raw = pipe.get(key)
            if raw is None:
                return None
            session = json.loads(raw)
            pipe.multi()
            pipe.delete(key)
            pipe.srem(f"{P}c:{session['customer_id']}:sessions", sid)
            self._stage(pipe, events_for(session))
            pipe.execute()
        return session

    # -- devices and risk -----------------------------------------------------
    def devices(self, cid: str) -> list[dict[str, Any]]:
        rows = [json.loads(v) for v in self.r.hvals(f"{P}c:{cid}:devices")]
        return sorted(rows, key=lambda d: (d["trusted_at"], d["device_id"]))

    def save_device(self, cid: str, device: dict[str, Any], events: Sequence[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(f"{P}c:{cid}:devices", device["device_id"], _j(device))
            self._stage(pipe, events)
            pipe.execute()

    def delete_device(self, cid: str, device_id: str, events: Sequence[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(f"{P}c:{cid}:devices", device_id)
            self._stage(pipe, events)
            return bool(pipe.execute()[0])

    def see_fingerprint(self, fp: str, cid: str, now: float, window: int = 86400) -> int:
        """Record that ``cid`` used ``fp``; how many customers used it within ``window``."""
        key = f"{P}fp:{fp}"
        with self.r.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {cid: now})
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zcard(key)
            pipe.expire(key, window)
            pipe.sadd(f"{P}c:{cid}:fps", fp)
            pipe.expire(f"{P}c:{cid}:fps", window)
            return int(pipe.execute()[2])

    def flag(self, fp: str, ttl: int = 86400) -> bool:
        return bool(self.r.set(f"{P}flag:{fp}", "1", nx=True, ex=ttl))

    def is_flagged(self, fp: str) -> bool:
        return bool(self.r.exists(f"{P}flag:{fp}"))

    # -- KPIs -----------------------------------------------------------------
    def count(self, **counters: int) -> None:
        with self.r.pipeline(transaction=False) as pipe:
            for name, n in counters.items():
                pipe.hincrby(STATS, name, n)
            pipe.execute()

    def record_outcome(self, counter: str, duration_ms: float | None) -> None:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hincrby(STATS, counter, 1)
            if duration_ms is not None:
                pipe.lpush(DURATIONS, round(duration_ms, 1))
                pipe.ltrim(DURATIONS, 0, DURATIONS_KEPT - 1)
            pipe.execute()

    def stats(self) -> tuple[dict[str, int], list[float]]:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(STATS)
            pipe.lrange(DURATIONS, 0, -1)
            counters, durations = pipe.execute()
        return {k: int(v) for k, v in counters.items()}, [float(d) for d in durations]

    # -- export and erasure ---------------------------------------------------
    def verification_ids(self, cid: str) -> list[str]:
        return sorted(self.r.smembers(f"{P}c:{cid}:vers"))

    def erase(self, cid: str, pipe: Any | None = None) -> None:
        """Delete everything held on ``cid`` (idempotent); inside ``pipe`` when given."""
        factors = list(self.r.hkeys(f"{P}c:{cid}:factors"))
        sids = list(self.r.smembers(f"{P}c:{cid}:sessions"))
        vids = list(self.r.smembers(f"{P}c:{cid}:vers"))
        fps = list(self.r.smembers(f"{P}c:{cid}:fps"))
        fps += [d["fingerprint"] for d in self.devices(cid)]
        keys = [
            f"{P}c:{cid}:{name}"
            for name in ("profile", "factors", "devices", "sessions", "vers", "fps", "fail", "lock")
        ]
        keys += [f"{P}totp:{fid}" for fid in factors]
        keys += [f"{P}s:{sid}" for sid in sids]
        for vid in vids:
            keys += [f"{P}v:{vid}", f"{P}v:{vid}:sat", f"{P}v:{vid}:att"]
            keys += [f"{P}v:{vid}:code:{t}" for t in ("sms_otp", "email_otp", "voice_otp")]
        own = pipe if pipe is not None else self.r.pipeline(transaction=True)
        own.delete(*keys)
        for fp in set(fps):
            own.zrem(f"{P}fp:{fp}", cid)
        if pipe is None:
            own.execute()

    # -- references (document checks) -----------------------------------------
    def put_ref(self, kind: str, key: str, value: str, ttl: int) -> None:
        self.r.set(f"{P}ref:{kind}:{key}", value, ex=ttl)

    def get_ref(self, kind: str, key: str) -> str | None:
        return self.r.get(f"{P}ref:{kind}:{key}")

    # -- batched reads and writes of the hot paths ------------------------------
    def policies_raw(self, *tiers: str) -> list[str | None]:
        return list(self.r.hmget(POLICIES, list(tiers)))

    def snapshot(self, cid: str) -> dict[str, Any]:
        """What starting a verification needs, in one round trip."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(f"{P}c:{cid}:profile")
            pipe.smembers(f"{P}c:{cid}:sessions")
            pipe.hvals(f"{P}c:{cid}:factors")
            pipe.hgetall(POLICIES)
            profile, sids, factors, policies = pipe.execute()
        rows = sorted(
            (json.loads(v) for v in factors), key=lambda f: (f["created_at"], f["factor_id"])
        )
        return {"profile": profile, "sids": sorted(sids), "factors": rows, "policies": policies}

    def status_snapshot(self, cid: str) -> tuple[str, list[dict[str, Any]], dict[str, str]]:
        """(projected tier, active sessions, stored policies) in one script call."""
        tier, sessions, flat = self._status(
            keys=[f"{P}c:{cid}:profile", f"{P}c:{cid}:sessions", POLICIES], args=[f"{P}s:"]
        )
        policies = dict(zip(flat[::2], flat[1::2], strict=True))
        return tier, [json.loads(v) for v in sessions], policies

    def sessions_by_id(self, cid: str, sids: Sequence[str]) -> list[dict[str, Any]]:
        if not sids:
            return []
        values = self.r.mget([f"{P}s:{sid}" for sid in sids])
        gone = [sid for sid, v in zip(sids, values, strict=True) if v is None]
        if gone:
            self.r.srem(f"{P}c:{cid}:sessions", *gone)
        return [json.loads(v) for v in values if v is not None]

    def commit_approval(
        self,
        session: dict[str, Any],
        ttl: int,
        vid: str,
        fields: Mapping[str, Any],
        events: Sequence[Event],
        counters: Mapping[str, int],
        duration_ms: float | None,
    ) -> bool:
        """Session and verification state, plus - for the first caller only - events and KPIs.

        One script call; returns True for the first caller of this verification.
        """
        cid, sid = session["customer_id"], session["sid"]
        stream = getattr(self.publisher, "stream", "") if self.publisher is not None else ""
        maxlen = getattr(self.publisher, "maxlen", 1_000_000)
        payload = {
            "session": _j(session),
            "sid": sid,
            "ttl": max(1, int(ttl)),
            "fields": {k: _j(v) for k, v in fields.items()},
            "counters": dict(counters) or {"approved": 0},  # cjson: {} would decode as []
            "duration": round(duration_ms or 0.0, 1),
            "events": [[x for kv in e.to_fields().items() for x in kv] for e in events],
            "maxlen": int(maxlen),
        }
        first = self._approve(
            keys=[
                f"{P}approved:{vid}",
                f"{P}s:{sid}",
                f"{P}c:{cid}:sessions",
                f"{P}v:{vid}",
                STATS,
                DURATIONS,
                stream,
            ],
            args=[json.dumps(payload, separators=(",", ":")), DURATIONS_KEPT],
        )
        return bool(first)
