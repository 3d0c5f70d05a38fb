"""Everything identity keeps, in Redis. Atomic parts are Lua scripts.

Every key that changes together with others shares one hash tag, so each
script and MULTI/EXEC stays in one slot and runs unchanged on Redis Cluster.
A customer lives in one of ``SHARDS`` shards (``crc32(customer id) % 16``);
the ids of their factors, verifications and sessions begin with that shard
(``v-07...``), so a key is found from the id alone.

Key layout (``{T}`` the shard's hash tag ``{idn-NN}``; ``{c}`` a customer id,
``{v}`` a verification id):

    idn:{idn-pol}:policies            hash tier -> policy JSON
    idn:{idn-pol}:audit               stream of policy changes (who, when, before, after)
    idn:{T}:c:{c}:profile             hash tier, language (projection of crm.profile.*)
    idn:{T}:erased:{sha256(c)}        time (ms) of the customer's erasure (TTL ERASURE_MEMORY)
    idn:{T}:c:{c}:factors             hash factor_id -> factor JSON, data sealed (sealing.py)
    idn:{T}:c:{c}:devices             hash device_id -> trusted device JSON
    idn:{T}:c:{c}:sessions            set of sids       idn:{T}:s:{sid}  session JSON (TTL)
    idn:{T}:c:{c}:vers                set of verification ids
    idn:{T}:c:{c}:fps                 set of fingerprints seen for the customer
    idn:{T}:c:{c}:fail / :lock        consecutive failures since the last lockout / lockout (TTL)
    idn:{T}:c:{c}:streak              consecutive failures across lockouts (held at 100)
    idn:{T}:v:{v}                     hash: the verification
    idn:{T}:v:{v}:sat / :att          satisfied factors / attempts reserved
    idn:{T}:v:{v}:code:{factor}       OTP hash (TTL)
    idn:{T}:approved:{v}              first-approval claim
    idn:{T}:totp:{factor_id}          last accepted TOTP step
    idn:{T}:stats / :stats:dur        KPI counters / recent durations of the shard
    idn:{T}:outbox                    cluster only: the shard's events, relayed in order
    idn:{idn-pol}:outbox              cluster only: policy and device events
    idn:thr:{destination hmac}        zset of send times (throttle)
    idn:fp:{fingerprint}              zset customer -> last seen (risk)
    idn:flag:{fingerprint}, idn:locked:{v}, idn:ref:...   single-key markers

Events: on a standalone Redis they are appended to ``sb:events:identity`` inside
the transaction or script that changes the state. On a cluster that stream is in
another slot, so they go to the shard's outbox instead, and the consumer process
relays every outbox to ``sb:events:identity`` (XADD, then XDEL; a crash between
the two repeats event ids, which consumers deduplicate). One customer, one
outbox: their events keep their order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import orjson
from redis.cluster import RedisCluster
from redis.exceptions import RedisError

from services.identity.domain.errors import StepTaken
from services.identity.domain.lockout import FAILURE_CAP
from shared.events import Event
from shared.sealing import Sealer
from shared.tracking import Read, TrackedCache, read_through

log = logging.getLogger("sb.identity.store")

P = "idn:"
SHARDS = 16  # fixed for the life of the data: a customer's shard is part of their ids
POLICY_TAG = P + "{idn-pol}:"
AUDIT = POLICY_TAG + "audit"
POLICIES = POLICY_TAG + "policies"
DURATIONS_KEPT = 10_000 // SHARDS  # per shard: about the last 10,000 overall
VERIFICATION_TTL = 3600
FAILURE_MEMORY = 86400  # consecutive failures are forgotten a day after the last one
# The streak outlives any lockout (at most 86400 s) by far, so pacing guesses one lockout
# apart never resets it: only a month without a failure does, which bounds a patient
# attacker to 100 guesses a month. At the cap it is kept until an administrator unlocks.
STREAK_MEMORY = 30 * 86400
RELAY_LEASE = P + "relay:lease"
# How long an erasure is remembered (its time only) so that an older crm.profile.* event
# delivered after it - another consumer of the group, a reclaimed pending entry, a re-sent
# batch - cannot recreate a projection; far beyond any redelivery (processed ids: 2 days).
ERASURE_MEMORY = 30 * 86400


def shard_of(cid: str) -> int:
    return zlib.crc32(cid.encode()) % SHARDS


_MINTED = re.compile(r"[a-z]+-[0-9a-f]{32}")


def shard_of_id(oid: str) -> int:
    """The shard an id was made in (``v-07...``); ids from elsewhere hash to one."""
    _, _, rest = oid.partition("-")
    try:
        return int(rest[:2], 16) % SHARDS
    except ValueError:
        return shard_of(oid)


def tag(shard: int) -> str:
    return f"{P}{{idn-{shard:02d}}}:"


def outbox(shard: int | None) -> str:
    """The outbox of a shard; ``None`` is the one of policy and device events."""
    return (POLICY_TAG if shard is None else tag(shard)) + "outbox"


OUTBOXES = [outbox(k) for k in range(SHARDS)] + [outbox(None)]


def ckey(cid: str, name: str) -> str:
    return f"{tag(shard_of(cid))}c:{cid}:{name}"


# Every customer's factors hash (SCAN MATCH; braces are not special in a pattern).
FACTORS_MATCH = P + "{idn-*}:c:*:factors"


def customer_of_factors_key(key: str) -> str | None:
    """The customer whose factors hash ``key`` is; None for a key ckey() does not make."""
    cid = key[len(tag(0)) + 2 : -len(":factors")]
    return cid if cid and ckey(cid, "factors") == key else None


def erased_key(cid: str) -> str:
    """The erasure tombstone of ``cid``: in the customer's slot, but the id itself is not
    in the key (a digest), so nothing left after an erasure names the customer."""
    digest = hashlib.sha256(cid.encode()).hexdigest()[:32]
    return f"{tag(shard_of(cid))}erased:{digest}"


def vkey(vid: str) -> str:
    return f"{tag(shard_of_id(vid))}v:{vid}"


def skey(sid: str) -> str:
    return f"{tag(shard_of_id(sid))}s:{sid}"


def totp_key(fid: str) -> str:
    return f"{tag(shard_of_id(fid))}totp:{fid}"


# What the read cache may hold, and so what Redis must tell it about: sessions,
# the customer keys (profile tier, session set), policies and risk flags.
TRACKED_PREFIXES = (
    *(tag(k) + "s:" for k in range(SHARDS)),
    *(tag(k) + "c:" for k in range(SHARDS)),
    POLICIES,
    P + "flag:",
)


def stats_keys(shard: int) -> tuple[str, str]:
    return tag(shard) + "stats", tag(shard) + "stats:dur"


# The rule of domain/lockout.py (tests/integration/identity/test_identity_lockout_model.py
# drives both with the same random sequences). ``streak`` counts consecutive failures
# across lockouts; at the cap (ARGV cap) the customer is held: no attempt is evaluated
# until an administrator unlocks them, so the streak then loses its TTL.
# KEYS: attempts, failures, lock, streak.
# ARGV: max_attempts, attempts_ttl, failures_ttl, cap, streak_ttl
# -> {granted (1/0), remaining, retry_after, held (1/0)}
_RESERVE = """
local cap = tonumber(ARGV[4])
local s = tonumber(redis.call('GET', KEYS[4]) or '0')
if s >= cap then return {0, 0, 0, 1} end
local lock_ttl = redis.call('PTTL', KEYS[3])
if lock_ttl > 0 then return {0, 0, math.ceil(lock_ttl / 1000), 0} end
local limit = math.min(tonumber(ARGV[1]), cap)
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if a >= limit or f >= limit then return {0, 0, 1, 0} end
a = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
f = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
s = redis.call('INCR', KEYS[4])
if s >= cap then redis.call('PERSIST', KEYS[4]) else redis.call('EXPIRE', KEYS[4], ARGV[5]) end
return {1, math.max(0, math.min(limit - math.max(a, f), cap - s)), 0, 0}
"""

# KEYS: attempts, failures, lock, streak. ARGV: success (1/0), max_attempts,
# lockout_seconds, cap -> {locked (1/0), remaining}
_SETTLE = """
local cap = tonumber(ARGV[4])
local limit = math.min(tonumber(ARGV[2]), cap)
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] == '1' then
  if a > 0 then redis.call('DECR', KEYS[1]) end
  redis.call('DEL', KEYS[2], KEYS[4])
  return {0, limit - math.max(a - 1, 0)}
end
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
local s = tonumber(redis.call('GET', KEYS[4]) or '0')
if s >= cap then return {1, 0} end
if a >= limit or f >= limit then
  redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return {1, 0}
end
return {0, math.max(0, math.min(limit - math.max(a, f), cap - s))}
"""

# KEYS: a customer's profile projection, their erasure tombstone. ARGV: the event's time
# (ms), n, n fields to delete, then field/value pairs to set. -> 1 applied, 0 older than
# what it holds or not newer than the customer's erasure.
# Several consumers of one group, or a re-sent batch, may deliver a customer's events
# out of order: an older tier must never overwrite a newer one, nor recreate a projection
# of an erased customer (a profile re-created later, with a newer event, projects again).
_PROJECT = """
local at = tonumber(ARGV[1])
if at <= tonumber(redis.call('GET', KEYS[2]) or '-1') then return 0 end
if at < tonumber(redis.call('HGET', KEYS[1], 'as_of') or '0') then return 0 end
local n = tonumber(ARGV[2])
for i = 3, 2 + n do redis.call('HDEL', KEYS[1], ARGV[i]) end
local set = {'as_of', ARGV[1]}
for i = 3 + n, #ARGV do set[#set + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(set))
return 1
"""

# KEYS: erasure tombstone. ARGV: the erasure's time (ms), ttl (ms). Keeps the latest
# erasure time (a late, older erasure event does not move it back).
_TOMBSTONE = """
local held = tonumber(redis.call('GET', KEYS[1]) or '-1')
local at = math.max(held, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d', at), 'PX', ARGV[2])
return at
"""

# KEYS: a session's status-reuse marker, the stats hash. ARGV: ttl (s). A status answer
# that found the customer verified is a verification avoided: counted once per session
# and channel, however often the IVR asks during its calls.
_STATUS_REUSE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], 'status_reused', 1)
  return 1
end
return 0
"""
STATUS_COUNTED_KEPT = 50_000  # markers a process remembers having written


def _claim_step(step: str, taken: int) -> str:
    """A TOTP time step is accepted once, and never one older: KEYS[1] holds the last
    accepted; ``step`` is the Lua expression of this one; the script answers ``taken``
    when it was accepted before."""
    return f"""
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber({step}) then return {taken} end
redis.call('SET', KEYS[1], {step})
"""


# KEYS: last step. ARGV: step. -> 1 accepted, 0 taken before.
_ACCEPT_STEP = _claim_step("ARGV[1]", 0) + "return 1\n"

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

# KEYS: a customer's factors hash. ARGV: triples of field, the value read, the value to
# store. Each field is replaced only while it still holds exactly the value read, so a
# factor deleted or saved since that read stays as it is now (never resurrected nor
# rolled back). -> how many fields were replaced.
_RESEAL = """
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""


# KEYS: profile, session set[, policies]. ARGV: session key prefix (same slot).
# -> {projected tier or '', [session JSON...], [tier, policy, ...]}: one round trip.
# On a cluster the policies are in another slot and read beside the script.
_STATUS = """
local tier = redis.call('HGET', KEYS[1], 'tier') or ''
local sessions = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local v = redis.call('GET', ARGV[1] .. sid)
  if v then sessions[#sessions + 1] = v end
end
local policies = {}
if KEYS[3] then policies = redis.call('HGETALL', KEYS[3]) end
return {tier, sessions, policies}
"""


# KEYS: attempts, failures, lock, streak, satisfied set. ARGV: max_attempts, factor, ttl, cap.
# A successful attempt: refund it, record the factor; when it approves, clear the
# earlier failures and the streak too. -> {remaining, [satisfied...]}
def _settle_success_body(k: int, factor: str, ttl: str, *, approving: bool) -> str:
    """Refund the attempt (counted as a failure in advance) and record the factor:
    KEYS[k..k+4] are the attempts, failures, lock, streak and satisfied set; ``factor``
    and ``ttl`` are the Lua expressions of the factor and the set's TTL. Leaves the
    attempts read in ``att``.

    Only an ``approving`` success clears the customer's earlier failures and streak: a
    factor that does not complete the verification proves nothing about the others, and
    a known answer to the weakest must not reset the count of guesses at the strongest."""
    if approving:
        clear = f"redis.call('DEL', KEYS[{k + 1}], KEYS[{k + 3}])\n"
    else:  # refund only what the reservation counted in advance
        clear = "".join(
            f"if tonumber(redis.call('GET', KEYS[{k + i}]) or '0') > 0 then "
            f"redis.call('DECR', KEYS[{k + i}]) end\n"
            for i in (1, 3)
        )
    return f"""
local att = tonumber(redis.call('GET', KEYS[{k}]) or '0')
if att > 0 then redis.call('DECR', KEYS[{k}]) end
{clear}redis.call('SADD', KEYS[{k + 4}], {factor})
redis.call('EXPIRE', KEYS[{k + 4}], {ttl})
"""


def _settle_success(*, approving: bool) -> str:
    return (
        _settle_success_body(1, "ARGV[2]", "ARGV[3]", approving=approving)
        + """
local cap = tonumber(ARGV[4])
local limit = math.min(tonumber(ARGV[1]), cap)
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
local s = tonumber(redis.call('GET', KEYS[4]) or '0')
local left = math.min(limit - math.max(att - 1, 0, f), cap - s)
return {math.max(0, left), redis.call('SMEMBERS', KEYS[5])}
"""
    )


_SETTLE_SUCCESS = _settle_success(approving=False)
_SETTLE_APPROVING = _settle_success(approving=True)


# The tail of a script that appends ``a.events`` (field lists) to the stream KEYS[n], if given.
def _append_events(n: int) -> str:
    return f"""
if KEYS[{n}] then
  for _, fields in ipairs(a.events) do
    redis.call('XADD', KEYS[{n}], 'MAXLEN', '~', a.maxlen, '*', unpack(fields))
  end
end
return 1
"""


# KEYS: verification hash, its satisfied set, the customer's verifications, stats[, stream].
# ARGV[1]: the verification id; ARGV[2]: JSON {fields, sat, counters, ttl, events, maxlen}.
# One command instead of a MULTI of a dozen: the client packs one, not each of them.
_CREATE = """
local a = cjson.decode(ARGV[2])
for name, n in pairs(a.counters) do redis.call('HINCRBY', KEYS[4], name, n) end
for k, v in pairs(a.fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('EXPIRE', KEYS[1], a.ttl)
if #a.sat > 0 then
  redis.call('SADD', KEYS[2], unpack(a.sat))
  redis.call('EXPIRE', KEYS[2], a.ttl)
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], a.ttl)
""" + _append_events(5)


# KEYS: claim, session, customer's session set, verification hash, stats, durations[, stream].
# ARGV[1]: JSON {session, ttl, fields, counters, duration, events: [[k, v, ...]], maxlen}.
# Always stores the session and the verification state; the first caller for a
# verification (the claim) also appends the events and counts the KPIs. One round trip.
def _approve_body(k: int) -> str:
    """KEYS[k..k+5]: claim, session, session set, verification, stats, durations."""
    return f"""
local a = cjson.decode(ARGV[1])
local first = redis.call('SET', KEYS[{k}], '1', 'NX', 'EX', 3600)
redis.call('SET', KEYS[{k + 1}], a.session, 'EX', a.ttl)
redis.call('SADD', KEYS[{k + 2}], a.sid)
redis.call('EXPIRE', KEYS[{k + 2}], 172800)
for k, v in pairs(a.fields) do redis.call('HSET', KEYS[{k + 3}], k, v) end
if not first then return 0 end
for name, n in pairs(a.counters) do redis.call('HINCRBY', KEYS[{k + 4}], name, n) end
redis.call('LPUSH', KEYS[{k + 5}], a.duration)
redis.call('LTRIM', KEYS[{k + 5}], 0, tonumber(ARGV[2]) - 1)
"""


_APPROVE = _approve_body(1) + _append_events(7)

# The approving check of a TOTP code in one round trip: claim the code's time step (as
# _ACCEPT_STEP), settle the successful attempt (as _SETTLE_SUCCESS), approve (as
# _APPROVE). KEYS: the factor's last step, _SETTLE_SUCCESS's five, _APPROVE's six[,
# stream]. ARGV: _APPROVE's two, then the step, the factor, the satisfied set's TTL.
# -> -1 when the step was accepted before (nothing written), else _APPROVE's answer.
_CLAIM_SETTLE_APPROVE = (
    _claim_step("ARGV[3]", -1)
    + _settle_success_body(2, "ARGV[4]", "ARGV[5]", approving=True)
    + _approve_body(7)
    + _append_events(13)
)


def _factor_aad(cid: str, fid: str) -> bytes:
    # Binds a sealed value to its customer and factor: copied to another record, it does
    # not open.
    return f"idn:factor:{cid}:{fid}".encode()


def _j(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits (a client's device description may hold one)
        return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class ResealCounts:
    """What a reseal scan found, in factors (hash fields)."""

    customers: int = 0
    scanned: int = 0
    resealed: int = 0  # written back under the current key
    unopenable: int = 0  # open under no configured key, or damaged: left as they are
    changed: int = 0  # changed by another writer between the read and the write-back


def _oldest_first(rows: Mapping[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    found = [r for r in rows.values() if r is not None]
    return sorted(found, key=lambda f: (f["created_at"], f["factor_id"]))


class RedisStore:
    def __init__(
        self,
        redis: Any,
        publisher: Any = None,
        cache: TrackedCache | None = None,
        *,
        sealer: Sealer | None = None,
    ) -> None:
        self.r = redis
        self.publisher = publisher
        # Seals each factor's ``data`` (a TOTP secret, a destination) at rest; a store
        # without one (the consumer's) can erase factors but never read or write them.
        self.sealer = sealer
        # Serves the token and status checks without a round trip; see shared/tracking.py.
        self.cache = cache
        # On a cluster sb:events:identity is in another slot than the state it goes with.
        self.cluster = isinstance(redis, RedisCluster)
        self._settle = redis.register_script(_SETTLE)
        self._settle_success = redis.register_script(_SETTLE_SUCCESS)
        self._accept_step = redis.register_script(_ACCEPT_STEP)
        self._throttle = redis.register_script(_THROTTLE)
        self._consume_code = redis.register_script(_CONSUME_CODE)
        self._status = redis.register_script(_STATUS)
        self._approve = redis.register_script(_APPROVE)
        self._claim_settle_approve = redis.register_script(_CLAIM_SETTLE_APPROVE)
        self._create = redis.register_script(_CREATE)
        self._reseal = redis.register_script(_RESEAL)
        self._status_reuse = redis.register_script(_STATUS_REUSE)
        # Markers this process wrote: the IVR's repeated questions cost no round trip
        # (status answers from the read cache), only the first of each per process.
        self._status_counted: set[str] = set()

    def new_id(self, prefix: str, cid: str) -> str:
        """An opaque id whose keys live in the shard of customer ``cid``: the prefix, the
        shard in two hex digits, 30 more of a uuid4 (``is_minted`` knows the shape)."""
        return f"{prefix}-{shard_of(cid):02x}{uuid.uuid4().hex[2:]}"

    @staticmethod
    def is_minted(oid: str, prefix: str) -> bool:
        """Whether ``new_id(prefix, ...)`` could have made ``oid``."""
        return _MINTED.fullmatch(oid) is not None and oid.startswith(prefix + "-")

    # -- events ---------------------------------------------------------------
    def _event_stream(self, shard: int | None) -> str:
        """Where events written with state of ``shard`` go: the stream, or the outbox."""
        if self.publisher is None:
            return ""
        return outbox(shard) if self.cluster else self.publisher.stream

    def _script_events(self, events: Iterable[Event]) -> dict[str, Any]:
        """The ``events`` and ``maxlen`` a script's payload needs (see ``_append_events``)."""
        return {
            "events": [[x for kv in e.to_fields().items() for x in kv] for e in events],
            "maxlen": int(getattr(self.publisher, "maxlen", 1_000_000)),
        }

    def _stage(self, pipe: Any, events: Iterable[Event], shard: int | None) -> None:
        stream = self._event_stream(shard)
        if stream:
            maxlen = self.publisher.maxlen
            for event in events:
                pipe.xadd(stream, event.to_fields(), maxlen=maxlen, approximate=True)

    def publish(self, events: Sequence[Event]) -> None:
        """Events written without state; on a cluster through the customer's outbox."""
        if not events or self.publisher is None:
            return
        if not self.cluster:
            self.publisher.publish_many(events)
            return
        with self.r.pipeline(transaction=False) as pipe:
            for event in events:
                cid = event.data.get("customer_id")
                self._stage(pipe, [event], shard_of(str(cid)) if cid else None)
            pipe.execute()

    def relay(self, target: str, maxlen: int, batch: int = 500) -> int:
        """Cluster: move every outbox to ``target``, oldest first; XADD before XDEL."""
        with self.r.pipeline(transaction=False) as pipe:
            for box in OUTBOXES:
                pipe.xrange(box, count=batch)
            found = pipe.execute()
        moves = [(box, entries) for box, entries in zip(OUTBOXES, found, strict=True) if entries]
        if not moves:
            return 0
        with self.r.pipeline(transaction=False) as pipe:
            for _, entries in moves:
                for _, fields in entries:
                    pipe.xadd(target, fields, maxlen=maxlen, approximate=True)
            pipe.execute()
        with self.r.pipeline(transaction=False) as pipe:
            for box, entries in moves:
                pipe.xdel(box, *[eid for eid, _ in entries])
            pipe.execute()
        return sum(len(entries) for _, entries in moves)

    def acquire_lease(self, holder: str, ttl_ms: int) -> bool:
        """A renewable lease: one relay at a time keeps each outbox in order."""
        if self.r.set(RELAY_LEASE, holder, nx=True, px=ttl_ms):
            return True
        if self.r.get(RELAY_LEASE) == holder:
            self.r.pexpire(RELAY_LEASE, ttl_ms)
            return True
        return False

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
            self._stage(pipe, events, None)
            pipe.execute()

    def audit(self, limit: int, before: str | None) -> tuple[list[dict[str, Any]], str | None]:
        upper = f"({before}" if before else "+"
        rows = self.r.xrevrange(AUDIT, max=upper, min="-", count=limit + 1)
        items = [{"id": eid, **json.loads(f["entry"])} for eid, f in rows[:limit]]
        return items, (rows[limit - 1][0] if len(rows) > limit else None)

    # -- CRM projection -------------------------------------------------------
    def profile(self, cid: str) -> dict[str, str]:
        """The CRM's projected fields (tier, language, merged_into), without its clock."""
        fields: dict[str, str] = self.r.hgetall(ckey(cid, "profile"))
        fields.pop("as_of", None)
        return fields

    def stage_profile(self, pipe: Any, cid: str, fields: Mapping[str, str], at_ms: int) -> None:
        """Project ``fields`` as of ``at_ms`` (the event's time), unless newer ones are held."""
        pairs = [x for kv in fields.items() for x in kv]
        # EVAL, not EVALSHA: the script text travels in any pipeline, on a cluster too
        # (whose pipeline refuses .eval(), not the command).
        keys = (ckey(cid, "profile"), erased_key(cid))
        pipe.execute_command("EVAL", _PROJECT, 2, *keys, at_ms, 0, *pairs)

    def stage_unmerge(self, pipe: Any, cid: str, at_ms: int) -> None:
        keys = (ckey(cid, "profile"), erased_key(cid))
        pipe.execute_command("EVAL", _PROJECT, 2, *keys, at_ms, 1, "merged_into")

    # -- factors --------------------------------------------------------------
    # A factor read in clear (stored before sealing existed) or sealed under a key kept
    # only to open (IDENTITY_DATA_KEY_PREVIOUS) is written back sealed under the current
    # key by the read itself: a confirmed TOTP factor is never saved again, so waiting for
    # a save would keep its secret in clear, or the old key needed, for ever.
    # ``python -m services.identity.reseal`` does the same for every factor at once.
    def factors(self, cid: str) -> list[dict[str, Any]]:
        return _oldest_first(self._open_factors(cid, self.r.hgetall(ckey(cid, "factors"))))

    def factor(self, cid: str, fid: str) -> dict[str, Any] | None:
        raw = self.r.hget(ckey(cid, "factors"), fid)
        return self._open_factors(cid, {fid: raw})[fid] if raw else None

    def sealed_factor(self, cid: str, record: Mapping[str, Any]) -> str:
        """The factor record as stored: everything but ``data`` in clear (ids, type,
        status, the masked ``public`` part), ``data`` sealed to this customer and factor."""
        if self.sealer is None:
            raise RuntimeError("this store has no sealer: it cannot write factor data")
        stored = {k: v for k, v in record.items() if k != "data"}
        aad = _factor_aad(cid, record["factor_id"])
        stored["sealed_data"] = self.sealer.seal(_j(record.get("data") or {}).encode(), aad)
        return _j(stored)

    def _unseal(self, cid: str, raw: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the record with ``data`` opened, or None when it opens under no configured
        key; the value to store instead when it is in clear or under an older key)."""
        record: dict[str, Any] = json.loads(raw)
        sealed = record.pop("sealed_data", None)
        if sealed is None:  # stored before factor data was sealed
            return record, (self.sealed_factor(cid, record) if self.sealer else None)
        if self.sealer is None:
            raise RuntimeError("this store has no sealer: it cannot read factor data")
        opened = self.sealer.open(sealed, _factor_aad(cid, record["factor_id"]))
        if opened is None:
            return None, None
        record["data"] = json.loads(opened)
        return record, (None if self.sealer.current(sealed) else self.sealed_factor(cid, record))

    def _sort_out(
        self, cid: str, stored: Mapping[str, str], *, skip_malformed: bool = False
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, tuple[str, str]]]:
        """(each field's record, None where it does not open; ``{field: (value read, value
        to store)}`` for those in clear or under an older key). With ``skip_malformed`` a
        value that is no factor record counts as not opening instead of raising."""
        rows: dict[str, dict[str, Any] | None] = {}
        stale: dict[str, tuple[str, str]] = {}
        for fid, raw in stored.items():
            try:
                record, replacement = self._unseal(cid, raw)
            except (ValueError, KeyError, TypeError):
                if not skip_malformed:
                    raise
                record, replacement = None, None
            if record is not None and replacement is not None:
                stale[fid] = (raw, replacement)
            rows[fid] = record
        return rows, stale

    def _open_factors(
        self, cid: str, stored: Mapping[str, str]
    ) -> dict[str, dict[str, Any] | None]:
        """Each field's record, None where it does not open; those in clear or under an
        older key are re-sealed under the current one."""
        rows, stale = self._sort_out(cid, stored)
        for fid, record in rows.items():
            if record is None:
                # Not under any configured IDENTITY_DATA_KEY (a key dropped too early) or
                # damaged: unusable, so treated as absent rather than failing every request.
                log.error("factor data does not open", extra={"factor_id": fid})
        if stale:
            self._reseal_quietly(cid, stale)
        return rows

    def write_back_factors(self, cid: str, stale: Mapping[str, tuple[str, str]]) -> int:
        """Store each factor's new value, ``{factor_id: (value read, new value)}``, only
        while its field still holds the value read (see ``_RESEAL``); how many were."""
        args = [x for fid, (read, new) in stale.items() for x in (fid, read, new)]
        return int(self._reseal(keys=[ckey(cid, "factors")], args=args))

    def replace_factor_data(
        self, cid: str, record: Mapping[str, Any], data: Mapping[str, Any]
    ) -> bool:
        """Store ``data`` in the factor only while it still is ``record`` as read (the
        compare-and-set of ``write_back_factors``): False when it changed meanwhile."""
        raw = self.r.hget(ckey(cid, "factors"), record["factor_id"])
        current = self._unseal(cid, raw)[0] if raw else None
        if current is None or current != dict(record):
            return False
        new = self.sealed_factor(cid, {**current, "data": dict(data)})
        return self.write_back_factors(cid, {record["factor_id"]: (raw, new)}) == 1

    def _reseal_quietly(self, cid: str, stale: Mapping[str, tuple[str, str]]) -> None:
        try:
            self.write_back_factors(cid, stale)
        except RedisError as exc:
            # A read must not fail for a write it did on the side (a read-only replica,
            # a full or unreachable primary): a later read or the reseal scan retries.
            # Only the error's type: a message may quote the command, i.e. the record.
            log.warning(
                "factor data not re-sealed",
                extra={"factor_ids": sorted(stale), "error": type(exc).__name__},
            )

    def reseal_all(self, batch: int = 500) -> ResealCounts:
        """Re-seal every factor in clear or under an older key, as a read would, without
        waiting for reads: SCAN the factors hashes (on a cluster, every primary), read a
        batch of them in one pipeline, write back each customer's stale factors with the
        same compare-and-set. Idempotent; a hash SCAN returns twice is counted twice."""
        counts = ResealCounts()
        keys = self.r.scan_iter(match=FACTORS_MATCH, count=batch, _type="hash")
        cids = (c for c in map(customer_of_factors_key, keys) if c is not None)
        while chunk := list(islice(cids, batch)):
            with self.r.pipeline(transaction=False) as pipe:
                for cid in chunk:
                    pipe.hgetall(ckey(cid, "factors"))
                found = pipe.execute()
            for cid, stored in zip(chunk, found, strict=True):
                counts.customers += 1
                counts.scanned += len(stored)
                rows, stale = self._sort_out(cid, stored, skip_malformed=True)
                counts.unopenable += sum(record is None for record in rows.values())
                if stale:
                    written = self.write_back_factors(cid, stale)
                    counts.resealed += written
                    counts.changed += len(stale) - written
        return counts

    def save_factor(self, cid: str, record: dict[str, Any], events: list[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(ckey(cid, "factors"), record["factor_id"], self.sealed_factor(cid, record))
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def delete_factor(self, cid: str, fid: str, events: list[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(ckey(cid, "factors"), fid)
            if shard_of_id(fid) == shard_of(cid):
                pipe.delete(totp_key(fid))
            self._stage(pipe, events, shard_of(cid))
            removed = pipe.execute()[0]
        if shard_of_id(fid) != shard_of(cid):  # an id not made here: its step is elsewhere
            self.r.delete(totp_key(fid))
        return bool(removed)

    def accept_step(self, fid: str, step: int) -> bool:
        return bool(self._accept_step(keys=[totp_key(fid)], args=[step]))

    def claims_with_approval(self, cid: str, vid: str, sid: str, fid: str) -> bool:
        """Can ``commit_approval`` claim factor ``fid``'s step in the approval's script? On a
        cluster only when every key is in the customer's slot (ids made here are)."""
        shard = shard_of(cid)
        return not self.cluster or all(shard_of_id(i) == shard for i in (vid, sid, fid))

    # -- verifications --------------------------------------------------------
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

    # -- attempts and lockout -------------------------------------------------
    def _attempt_keys(self, vid: str, cid: str) -> list[str]:
        return [vkey(vid) + ":att", ckey(cid, "fail"), ckey(cid, "lock"), ckey(cid, "streak")]

    def reserve_attempt(
        self, vid: str, cid: str, max_attempts: int
    ) -> tuple[tuple[bool, int, int, bool], list[dict[str, Any]]]:
        """((granted, remaining, retry_after, held), the customer's factors if granted), in
        one round trip: see domain/lockout.py."""
        keys = self._attempt_keys(vid, cid)
        args = (max_attempts, VERIFICATION_TTL, FAILURE_MEMORY, FAILURE_CAP, STREAK_MEMORY)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.execute_command("EVAL", _RESERVE, len(keys), *keys, *args)
            pipe.hgetall(ckey(cid, "factors"))
            (granted, remaining, retry, held), stored = pipe.execute()
        factors = _oldest_first(self._open_factors(cid, stored)) if granted else []
        return (bool(granted), int(remaining), int(retry), bool(held)), factors

    def _settle_success_call(
        self, vid: str, cid: str, factor: str, max_attempts: int
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``_SETTLE_SUCCESS``."""
        keys = [*self._attempt_keys(vid, cid), vkey(vid) + ":sat"]
        return keys, [max_attempts, factor, VERIFICATION_TTL, FAILURE_CAP]

    def settle_success(
        self, vid: str, cid: str, factor: str, max_attempts: int, lockout_seconds: int
    ) -> tuple[int, list[str]]:
        """Settle a successful attempt and record the factor: one script call."""
        keys, args = self._settle_success_call(vid, cid, factor, max_attempts)
        remaining, satisfied = self._settle_success(keys=keys, args=args)
        return int(remaining), sorted(satisfied)

    def settle_attempt(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_seconds: int
    ) -> tuple[bool, int]:
        locked, remaining = self._settle(
            keys=self._attempt_keys(vid, cid),
            args=["1" if success else "0", max_attempts, lockout_seconds, FAILURE_CAP],
        )
        return bool(locked), int(remaining)

    def lock_remaining(self, cid: str) -> int:
        ttl = self.r.ttl(ckey(cid, "lock"))
        return int(ttl) if ttl and ttl > 0 else 0

    def lock_state(self, cid: str) -> tuple[int, bool]:
        """(seconds the timed lock has left, held until an administrator unlocks)."""
        with self.r.pipeline(transaction=False) as pipe:
            pipe.ttl(ckey(cid, "lock"))
            pipe.get(ckey(cid, "streak"))
            ttl, streak = pipe.execute()
        return (int(ttl) if ttl and ttl > 0 else 0), int(streak or 0) >= FAILURE_CAP

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

    # -- delivered codes and throttling ---------------------------------------
    def store_code(self, vid: str, factor: str, record: dict[str, Any], ttl: int) -> None:
        self.r.set(f"{vkey(vid)}:code:{factor}", _j(record), ex=max(1, int(ttl)))

    def peek_code(self, vid: str, factor: str) -> dict[str, Any] | None:
        raw = self.r.get(f"{vkey(vid)}:code:{factor}")
        return json.loads(raw) if raw else None

    def consume_code(self, vid: str, factor: str, digest: str) -> bool:
        return bool(self._consume_code(keys=[f"{vkey(vid)}:code:{factor}"], args=[digest]))

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
            pipe.set(skey(sid), _j(session), ex=max(1, ttl))
            pipe.sadd(ckey(cid, "sessions"), sid)
            pipe.expire(ckey(cid, "sessions"), 86400 * 2)
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def _read(self, reads: Sequence[Read]) -> list[Any]:
        if self.cache is not None:
            return self.cache.fetch(reads)
        return read_through(self.r, reads)

    def session(self, sid: str) -> dict[str, Any] | None:
        (raw,) = self._read([("GET", skey(sid))])
        return json.loads(raw) if raw else None

    def sessions_of(self, cid: str) -> list[dict[str, Any]]:
        return self.sessions_by_id(cid, sorted(self.r.smembers(ckey(cid, "sessions"))))

    def revoke_session(self, sid: str, events_for: Any) -> dict[str, Any] | None:
        """Delete the session; ``events_for(session)`` gives the events to publish with it."""
        key = skey(sid)
        with self.r.pipeline(transaction=True) as pipe:
            pipe.watch(key)
            raw = pipe.get(key)
            if raw is None:
                return None
            session = json.loads(raw)
            pipe.multi()
            pipe.delete(key)
            pipe.srem(ckey(session["customer_id"], "sessions"), sid)
            self._stage(pipe, events_for(session), shard_of_id(sid))
            pipe.execute()
        return session

    # -- devices and risk -----------------------------------------------------
    def devices(self, cid: str) -> list[dict[str, Any]]:
        rows = [json.loads(v) for v in self.r.hvals(ckey(cid, "devices"))]
        return sorted(rows, key=lambda d: (d["trusted_at"], d["device_id"]))

    def save_device(self, cid: str, device: dict[str, Any], events: Sequence[Event]) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hset(ckey(cid, "devices"), device["device_id"], _j(device))
            self._stage(pipe, events, shard_of(cid))
            pipe.execute()

    def delete_device(self, cid: str, device_id: str, events: Sequence[Event]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            pipe.hdel(ckey(cid, "devices"), device_id)
            self._stage(pipe, events, shard_of(cid))
            return bool(pipe.execute()[0])

    def see_fingerprint(self, fp: str, cid: str, now: float, window: int = 86400) -> int:
        """Record that ``cid`` used ``fp``; how many customers used it within ``window``."""
        key = f"{P}fp:{fp}"
        with self.r.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {cid: now})
            pipe.zremrangebyscore(key, "-inf", now - window)
            pipe.zcard(key)
            pipe.expire(key, window)
            count = int(pipe.execute()[2])
        with self.r.pipeline(transaction=True) as pipe:  # the customer's slot
            pipe.sadd(ckey(cid, "fps"), fp)
            pipe.expire(ckey(cid, "fps"), window)
            pipe.execute()
        return count

    def flag(self, fp: str, ttl: int = 86400) -> bool:
        return bool(self.r.set(f"{P}flag:{fp}", "1", nx=True, ex=ttl))

    def is_flagged(self, fp: str) -> bool:
        (found,) = self._read([("EXISTS", f"{P}flag:{fp}")])
        return bool(found)

    # -- KPIs (per shard, summed when read) -------------------------------------
    def count(self, **counters: int) -> None:
        stats, _ = stats_keys(random.randrange(SHARDS))
        with self.r.pipeline(transaction=False) as pipe:
            for name, n in counters.items():
                pipe.hincrby(stats, name, n)
            pipe.execute()

    def record_outcome(self, counter: str, duration_ms: float | None) -> None:
        stats, durations = stats_keys(random.randrange(SHARDS))
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hincrby(stats, counter, 1)
            if duration_ms is not None:
                pipe.lpush(durations, round(duration_ms, 1))
                pipe.ltrim(durations, 0, DURATIONS_KEPT - 1)
            pipe.execute()

    def stats(self) -> tuple[dict[str, int], list[float]]:
        with self.r.pipeline(transaction=False) as pipe:
            for shard in range(SHARDS):
                stats, durations = stats_keys(shard)
                pipe.hgetall(stats)
                pipe.lrange(durations, 0, -1)
            found = pipe.execute()
        counters: dict[str, int] = {}
        for part in found[::2]:
            for k, v in part.items():
                counters[k] = counters.get(k, 0) + int(v)
        return counters, [float(d) for part in found[1::2] for d in part]

    # -- export and erasure ---------------------------------------------------
    def verification_ids(self, cid: str) -> list[str]:
        return sorted(self.r.smembers(ckey(cid, "vers")))

    def erase(self, cid: str, pipe: Any | None = None, at_ms: int | None = None) -> None:
        """Delete everything held on ``cid`` (idempotent); inside ``pipe`` when given.

        The customer's keys go in one command (one slot); the risk sets of the
        fingerprints they used are elsewhere, so on a cluster they follow. In the same
        command a tombstone keeps the erasure's time ``at_ms`` (the erasure event's;
        now when not given) for ``ERASURE_MEMORY``: projecting an event not newer than
        it changes nothing (see ``_PROJECT``).
        """
        if at_ms is None:
            at_ms = int(time.time() * 1000)
        with self.r.pipeline(transaction=False) as read:
            read.hkeys(ckey(cid, "factors"))
            read.smembers(ckey(cid, "sessions"))
            read.smembers(ckey(cid, "vers"))
            read.smembers(ckey(cid, "fps"))
            read.hvals(ckey(cid, "devices"))
            factors, sids, vids, fps, devices = read.execute()
        fps = list(fps) + [json.loads(d)["fingerprint"] for d in devices]
        shard = shard_of(cid)
        keys = [
            ckey(cid, name)
            for name in (
                "profile",
                "factors",
                "devices",
                "sessions",
                "vers",
                "fps",
                "fail",
                "lock",
                "streak",
            )
        ]
        keys += [totp_key(fid) for fid in factors]
        keys += [skey(sid) for sid in sids]
        for vid in vids:
            v = vkey(vid)
            keys += [v, f"{v}:sat", f"{v}:att"]
            keys += [f"{v}:code:{t}" for t in ("sms_otp", "email_otp", "voice_otp")]
        here = [k for k in keys if k.startswith(tag(shard))]
        elsewhere = [k for k in keys if not k.startswith(tag(shard))]  # ids not made here
        risk = [f"{P}fp:{fp}" for fp in set(fps)]
        if self.cluster and pipe is not None:
            raise ValueError("on a cluster erase() runs alone: its keys span slots")
        own = pipe if pipe is not None else self.r.pipeline(transaction=True)
        tombstone = (_TOMBSTONE, 1, erased_key(cid), int(at_ms), ERASURE_MEMORY * 1000)
        if self.cluster:  # one MULTI in the customer's slot; its pipeline DELs key by key
            for k in here:
                own.delete(k)
            own.execute_command("EVAL", *tombstone)
        else:
            own.execute_command("EVAL", *tombstone)
            own.delete(*here)
            for k in elsewhere:
                own.delete(k)
            for key in risk:
                own.zrem(key, cid)
        if pipe is None:
            own.execute()
        if self.cluster and (elsewhere or risk):
            with self.r.pipeline(transaction=False) as rest:
                for k in elsewhere:
                    rest.delete(k)
                for key in risk:
                    rest.zrem(key, cid)
                rest.execute()

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
            pipe.hgetall(ckey(cid, "profile"))
            pipe.smembers(ckey(cid, "sessions"))
            pipe.hgetall(ckey(cid, "factors"))
            pipe.hgetall(POLICIES)
            profile, sids, factors, policies = pipe.execute()
        rows = _oldest_first(self._open_factors(cid, factors))
        return {"profile": profile, "sids": sorted(sids), "factors": rows, "policies": policies}

    def count_status_reuse(self, sid: str, channel: str, ttl: int) -> None:
        """Count a verified status answer as a reuse, once per session and channel."""
        shard = shard_of_id(sid)
        marker = f"{tag(shard)}statusreuse:{sid}:{channel}"
        if marker in self._status_counted:
            return
        if len(self._status_counted) >= STATUS_COUNTED_KEPT:
            self._status_counted.clear()  # forgetting costs a round trip, never a count
        try:
            self._status_reuse(keys=[marker, stats_keys(shard)[0]], args=[max(1, ttl)])
        except RedisError as exc:  # a KPI: the IVR's answer matters more than its count
            log.warning("status reuse not counted", extra={"error": type(exc).__name__})
            return
        self._status_counted.add(marker)

    def status_snapshot(self, cid: str) -> tuple[str, list[dict[str, Any]], dict[str, str]]:
        """(projected tier, active sessions, stored policies): one script call standalone,
        the script and a read of the policies on a cluster."""
        keys = [ckey(cid, "profile"), ckey(cid, "sessions")]
        if self.cache is not None:  # all hits in the steady state: no round trip
            tier, sids, policies = self.cache.fetch(
                [("HGET", keys[0], "tier"), ("SMEMBERS", keys[1]), ("HGETALL", POLICIES)]
            )
            raw = self.cache.fetch([("GET", skey(sid)) for sid in sorted(sids)])
            # A cached copy outlives the key's TTL until Redis expires the key itself.
            now = time.time()
            live = [s for s in map(json.loads, filter(None, raw)) if s.get("exp", now + 1) > now]
            return tier or "", live, policies
        prefix = tag(shard_of(cid)) + "s:"
        if self.cluster:
            tier, sessions, _ = self._status(keys=keys, args=[prefix])
            policies = self.r.hgetall(POLICIES)
        else:
            tier, sessions, flat = self._status(keys=[*keys, POLICIES], args=[prefix])
            policies = dict(zip(flat[::2], flat[1::2], strict=True))
        return tier, [json.loads(v) for v in sessions], policies

    def sessions_by_id(self, cid: str, sids: Sequence[str]) -> list[dict[str, Any]]:
        if not sids:
            return []
        keys = [skey(sid) for sid in sids]
        if self.cluster and len({shard_of_id(sid) for sid in sids}) > 1:
            with self.r.pipeline(transaction=False) as pipe:  # ids not made here: per slot
                for key in keys:
                    pipe.get(key)
                values = pipe.execute()
        else:
            values = self.r.mget(keys)
        gone = [sid for sid, v in zip(sids, values, strict=True) if v is None]
        if gone:
            self.r.srem(ckey(cid, "sessions"), *gone)
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
        with self.r.pipeline(transaction=False) as pipe:
            # EVAL, not EVALSHA: a NOSCRIPT retry would settle the attempt twice.
            pipe.execute_command(
                "EVAL", _SETTLE_APPROVING, len(settle_keys), *settle_keys, *settle_args
            )
            pipe.execute_command("EVAL", _APPROVE, len(keys), *keys, *args)
            _, first = pipe.execute()
        return bool(first)
