"""The delivery fraud guard's state in Redis.

Key layout (``{idn-dlv}`` one hash tag: every counter a send checks is in one slot, so the
check-and-count is one script, one round trip, on a standalone Redis or a Cluster; the
slot sees one script per code sent, which a shard serves by the tens of thousands a
second):

    idn:{idn-pol}:delivery-policy          the policy JSON (beside the audit stream it
                                           is audited to, in one MULTI)
    idn:{idn-dlv}:blocks                   zset prefix -> blocked until (ms)
    idn:{idn-dlv}:dests:{hmac(customer)}   set of destination digests sent to (30 days
                                           after the last send)
    idn:{idn-dlv}:r:cl:{client}:{hour}     codes sent for an API client this hour
    idn:{idn-dlv}:r:cu:{hmac(customer)}:{hour}   ... for a customer
    idn:{idn-dlv}:r:px:{prefix}:{hour}     ... to a prefix
    idn:{idn-dlv}:conv:{prefix}            hash s|v:{bucket size}:{bucket} -> codes sent /
                                           entered (the auto block's conversion)
    idn:{idn-dlv}:sent:{verification}:{factor}   prefix and bucket of the last code sent
                                           (until it can no longer be entered)
    idn:{idn-dlv}:stats                    hash refused:{reason} / auto_blocks -> count

No number and no customer id is in a key or a value: destinations and customers appear
as keyed digests, numbers only as their prefix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from services.identity.adapters.redis.base import RedisBase
from services.identity.adapters.redis.keys import AUDIT, POLICY_TAG
from services.identity.adapters.redis.scripts import lua
from services.identity.domain.delivery_policy import HOUR, Usage
from services.identity.ports import Admission, GuardStats, PrefixBlock
from shared.events import Event

TAG = "idn:{idn-dlv}:"
POLICY_KEY = POLICY_TAG + "delivery-policy"
BLOCKS = TAG + "blocks"
STATS = TAG + "stats"
DESTINATIONS_MEMORY = 30 * 86400
BUCKETS = 60  # a conversion window is cut into about this many buckets


class DeliveryGuardStore:
    """``ports.DeliveryGuardStore``; ``events`` is the identity store, whose event staging
    and publishing the guard's events share."""

    def __init__(self, redis: Any, events: RedisBase) -> None:
        self.r = redis
        self.events = events
        self._admit = redis.register_script(lua("guard_admit"))
        self._block = redis.register_script(lua("guard_block"))
        self._take = redis.register_script(lua("guard_take"))

    # -- policy ---------------------------------------------------------------------------
    def policy_raw(self) -> dict[str, Any] | None:
        raw = self.r.get(POLICY_KEY)
        return json.loads(raw) if raw else None

    def save_policy(
        self, policy: Mapping[str, Any], audit: Mapping[str, Any], events: list[Event]
    ) -> None:
        """The policy, its audit entry and its event in one transaction (one slot)."""
        with self.r.pipeline(transaction=True) as pipe:
            pipe.set(POLICY_KEY, json.dumps(policy, separators=(",", ":")))
            pipe.xadd(AUDIT, {"entry": json.dumps(audit)}, maxlen=100_000, approximate=True)
            self.events._stage(pipe, events, None)
            pipe.execute()

    def audit(self, entry: Mapping[str, Any]) -> None:
        self.r.xadd(AUDIT, {"entry": json.dumps(entry)}, maxlen=100_000, approximate=True)

    # -- sends ----------------------------------------------------------------------------
    def admit(
        self,
        *,
        now: float,
        digest: str,
        customer: str,
        client: str,
        prefix: str,
        caps: tuple[int, int, int, int],
        window: int,
        grace: int,
        marker: str,
        marker_ttl: int,
    ) -> Admission:
        """Check every counter and count the send when all allow it, atomically."""
        hour = int(now // HOUR)
        size = max(60, math.ceil(window / BUCKETS))
        idx = int(now // size)
        none = TAG + "none"
        keys = [
            BLOCKS,
            f"{TAG}dests:{customer}",
            f"{TAG}r:cl:{client}:{hour}",
            f"{TAG}r:cu:{customer}:{hour}",
            f"{TAG}r:px:{prefix}:{hour}" if prefix else none,
            f"{TAG}conv:{prefix}" if prefix else none,
            f"{TAG}sent:{marker}",
        ]
        max_dest, c_client, c_customer, c_prefix = caps
        row = self._admit(
            keys=keys,
            args=[
                int(now * 1000),
                digest,
                max_dest,
                c_client,
                c_customer,
                c_prefix,
                HOUR + 60,
                DESTINATIONS_MEMORY,
                prefix,
                size,
                idx,
                math.ceil(window / size),
                math.ceil(grace / size),
                window + 2 * size,
                max(1, marker_ttl),
            ],
        )
        ok, blocked, ndest, known, c1, c2, c3, sends, conv = (int(x) for x in row)
        usage = Usage(
            prefix_blocked_for=max(0, blocked),
            destinations=ndest,
            known_destination=bool(known),
            per_client=c1,
            per_customer=c2,
            per_prefix=c3,
            window_left=HOUR - int(now % HOUR),
        )
        return Admission(bool(ok), usage, sends, conv)

    def converted(self, marker: str) -> bool:
        """A code sent to a prefix was entered: counted for the bucket it was sent in."""
        found = self._take(keys=[f"{TAG}sent:{marker}"])
        if not found:
            return False
        prefix, size, idx = str(found).split("|")
        with self.r.pipeline(transaction=False) as pipe:
            pipe.hincrby(f"{TAG}conv:{prefix}", f"v:{size}:{idx}", 1)
            pipe.expire(f"{TAG}conv:{prefix}", BUCKETS * int(size) + 2 * int(size))
            pipe.execute()
        return True

    def refused(self, reason: str) -> None:
        self.r.hincrby(STATS, f"refused:{reason}", 1)

    # -- blocks ---------------------------------------------------------------------------
    def block(self, prefix: str, until: float, now: float) -> bool:
        """Block ``prefix`` until ``until`` and start its conversion afresh; False when it
        was already blocked (a concurrent send blocked it first)."""
        keys = [BLOCKS, f"{TAG}conv:{prefix}", STATS]
        return bool(self._block(keys=keys, args=[prefix, int(until * 1000), int(now * 1000)]))

    def blocks(self, now: float) -> list[PrefixBlock]:
        rows = self.r.zrangebyscore(BLOCKS, int(now * 1000) + 1, "+inf", withscores=True)
        return [PrefixBlock(str(p), float(until) / 1000) for p, until in rows]

    def unblock(self, prefix: str) -> bool:
        return bool(self.r.zrem(BLOCKS, prefix))

    def stats(self) -> GuardStats:
        raw = {str(k): int(v) for k, v in self.r.hgetall(STATS).items()}
        refused = {
            k.removeprefix("refused:"): n for k, n in raw.items() if k.startswith("refused:")
        }
        return GuardStats(refused, raw.get("auto_blocks", 0))

    def publish(self, events: Sequence[Event]) -> None:
        self.events.publish(events)
