"""The key layout of everything identity keeps in Redis (the modules beside this one
store it by area; the atomic parts are the scripts of ``lua/``).

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
import zlib

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


STATUS_COUNTED_KEPT = 50_000  # status-reuse markers a process remembers having written


def attempt_keys(vid: str, cid: str) -> list[str]:
    """The lockout counters of a check: attempts, failures, lock, streak."""
    return [vkey(vid) + ":att", ckey(cid, "fail"), ckey(cid, "lock"), ckey(cid, "streak")]


def turn_key(vid: str, digest: str) -> str:
    return f"{vkey(vid)}:turn:{digest}"
