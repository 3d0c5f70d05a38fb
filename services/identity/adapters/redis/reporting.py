"""KPIs (per shard, summed when read), and erasure of a customer."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from services.identity.adapters import dev_outbox
from services.identity.adapters.redis.base import RedisBase
from services.identity.adapters.redis.keys import (
    DURATIONS_KEPT,
    ERASURE_MEMORY,
    SHARDS,
    P,
    ckey,
    erased_key,
    shard_of,
    skey,
    stats_keys,
    tag,
    totp_key,
    vkey,
)
from services.identity.adapters.redis.scripts import lua
from services.identity.ports import Stats
from shared import compaction, idempotency


class RedisReporting(RedisBase):
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

    def stats(self) -> Stats:
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
        return Stats(counters, [float(d) for part in found[1::2] for d in part])

    def verification_ids(self, cid: str) -> list[str]:
        return sorted(self.r.smembers(ckey(cid, "vers")))

    def erase(self, cid: str, pipe: Any | None = None, at_ms: int | None = None) -> None:
        """Delete everything held on ``cid`` (idempotent); inside ``pipe`` when given.

        The customer's keys go in one command (one slot); the risk sets of the
        fingerprints they used are elsewhere, so on a cluster they follow. In the same
        command a tombstone keeps the erasure's time ``at_ms`` (the erasure event's;
        now when not given) for ``ERASURE_MEMORY``: projecting an event not newer than
        it changes nothing (see ``lua/project.lua``).
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
        tombstone = (lua("tombstone"), 1, erased_key(cid), int(at_ms), ERASURE_MEMORY * 1000)
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

    def erase_customer(self, cid: str, at_ms: int) -> None:
        """Erase the customer, the responses stored for them (a TOTP enrollment) and the
        dev messages sent for their verifications; ask for an AOF rewrite, which still
        holds what was deleted."""
        verifications = self.verification_ids(cid)  # read before the erase deletes the set
        # Deleting what is gone already changes nothing: idempotent. The tombstone keeps
        # the erasure's time, so a late, older profile event stays ignored.
        self.erase(cid, at_ms=at_ms)
        idempotency.forget(self.r, cid)
        dev_outbox.drop_messages(self.r, verifications)
        compaction.request(self.r)
