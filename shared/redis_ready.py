"""A cheaper "is this pooled connection clean?" check under gevent.

redis-py asks, each time it hands a connection out of its pool, whether the socket
has anything to read (a reply left unread, or a close from the server). It asks with
``select.poll``, which gevent's monkey-patching replaces with a poll that registers
watchers on the hub and switches to it and back: about 7% of an identity worker's
CPU under a TOTP flow load (py-spy, docs/performance.md), four checkouts per flow.
The unpatched ``poll`` with a zero timeout is one non-blocking system call that
answers the same question without leaving the greenlet.
"""

from __future__ import annotations

import select
import sys
from collections.abc import Callable
from typing import Any

import redis

__all__ = ["ReadinessConnection"]


_POLL: list[Callable[[], Any] | None] = []  # found on first use: gevent patches before


def _real_poll() -> Callable[[], Any] | None:
    if not _POLL:
        monkey = sys.modules.get("gevent.monkey")
        if monkey is not None and monkey.is_module_patched("select"):
            _POLL.append(monkey.get_original("select", "poll"))
        else:
            _POLL.append(getattr(select, "poll", None))
    return _POLL[0]


def _buffered(parser: Any) -> bool:
    """Whether the parser may hold bytes already read (True when it cannot tell)."""
    reader = getattr(parser, "_reader", None)
    if reader is not None and hasattr(reader, "has_data"):
        return bool(reader.has_data())
    buffer = getattr(parser, "_buffer", None)
    if buffer is not None and hasattr(buffer, "unread_bytes"):
        return bool(buffer.unread_bytes())
    return True


class ReadinessConnection(redis.Connection):
    """``redis.Connection`` whose zero-timeout readiness check polls the socket without
    gevent's hub; anything to read (or a closed socket) goes to redis-py's own check."""

    def can_read(self, timeout: float = 0) -> bool:
        sock, poll = self._sock, _real_poll()
        if timeout == 0 and sock is not None and poll is not None and not _buffered(self._parser):
            poller = poll()
            poller.register(sock.fileno(), select.POLLIN)
            if not poller.poll(0):
                return False
        return bool(super().can_read(timeout))
