"""KPI counters projected from events, kept in 5-minute buckets in Redis.

Each service folds its own event stream into counters (its consumer process,
consumer group ``<service>-kpi``) and answers ``GET /v1/stats`` by summing the
buckets of the window asked for. All keys of one projection share a hash tag
equal to the group name, so an event's increments and its processed marker
(``Delivery.atomic``) commit in one transaction, on a cluster too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from shared.events import Event

BUCKET_SECONDS = 300
KEEP_SECONDS = 8 * 86400


class WindowArgs(Schema):
    """``?window_seconds=`` of every ``GET /v1/stats``: 5 minutes to 7 days, default a day."""

    window_seconds = fields.Integer(
        load_default=86400, validate=validate.Range(min=BUCKET_SECONDS, max=KEEP_SECONDS - 86400)
    )


class BucketCounters:
    def __init__(self, redis: Any, group: str) -> None:
        self.redis = redis
        self.group = group
        self.prefix = f"sb:kpi:{{{group}}}"

    def key(self, at: float) -> str:
        return f"{self.prefix}:{int(at // BUCKET_SECONDS)}"

    def state_key(self, name: str) -> str:
        """A key of the projection's own (e.g. contacts per case), in the same slot."""
        return f"{self.prefix}:state:{name}"

    def stage(self, pipe: Any, at: float, counters: Mapping[str, int]) -> None:
        key = self.key(at)
        for name, value in counters.items():
            if value:
                pipe.hincrby(key, name, value)
        pipe.expire(key, KEEP_SECONDS)

    def window(self, seconds: int, now: float | None = None) -> dict[str, int]:
        """Counters summed over the buckets that overlap the last ``seconds``."""
        now = time.time() if now is None else now
        first = int((now - seconds) // BUCKET_SECONDS)
        last = int(now // BUCKET_SECONDS)
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(first, last + 1):
            pipe.hgetall(f"{self.prefix}:{bucket}")
        total: dict[str, int] = {}
        for bucket in pipe.execute():
            for name, value in bucket.items():
                total[name] = total.get(name, 0) + int(value)
        return total


def occurred_epoch(event: Event) -> float:
    """The event's own time, so a replayed or late event lands in its bucket."""
    try:
        return datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


__all__ = ["BucketCounters", "WindowArgs", "occurred_epoch"]
