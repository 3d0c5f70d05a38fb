"""Trimming what every consumer group has read and acknowledged.

Streams are trimmed by what their readers no longer need, not by age: the publisher's
approximate MAXLEN stays the hard bound on memory (see docs/events.md). Apart from the
bus itself because it runs in its own loop of ``consumer_main``, not in a consumer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis as redis_lib

from shared import liveness
from shared.events import GROUPS

log = logging.getLogger("sb.bus")


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def safe_trim_point(redis: Any, stream: str, expected: Iterable[str] = ()) -> str | None:
    """The oldest entry some group still needs: none older is read or pending anywhere.

    None when the stream has no group yet (nobody has said what they need), or while
    one of the ``expected`` groups does not exist yet (it will want everything).
    """
    try:
        groups = redis.xinfo_groups(stream)
    except redis_lib.ResponseError:  # no such stream
        return None
    if not groups or set(expected) - {g["name"] for g in groups}:
        return None
    points: list[str] = []
    for group in groups:
        points.append(group["last-delivered-id"])
        if group.get("pending"):
            oldest = redis.xpending(stream, group["name"])["min"]
            # None: acknowledged since XINFO (a busy consumer); last-delivered bounds it.
            if oldest is not None:
                points.append(oldest)
    return min(points, key=_id_key)


def trim_consumed(redis: Any, stream: str) -> int:
    """Trim what every group has read and acknowledged; returns entries removed.

    The publisher's approximate MAXLEN stays the hard bound on memory: a group
    that falls that far behind loses the oldest entries (see docs/events.md).
    """
    point = safe_trim_point(redis, stream, GROUPS.get(stream, ()))
    if point is None or point == "0-0":
        return 0
    return int(redis.xtrim(stream, minid=point, approximate=True))


def trim_loop(
    redis: Any, streams: Sequence[str], interval: float = 10.0
) -> Callable[[threading.Event], None]:
    """A runnable for ``consumer_main``: trims ``streams`` every ``interval`` seconds."""

    def trim(stop: threading.Event) -> None:
        while True:
            liveness.stamp(interval)
            if stop.wait(interval):
                return
            for stream in streams:
                try:
                    trim_consumed(redis, stream)
                except redis_lib.RedisError as exc:
                    log.warning("trim failed", extra={"stream": stream, "error": str(exc)})

    return trim
