"""A circuit breaker shared through Redis, for the external services identity calls
while a request waits (delivery gateways, document verifiers).

Identity answers IVR status checks from the same workers that call them, and
a gateway that hangs would hold each worker for its whole retry budget (a webhook:
4 tries of up to 5 s): a few concurrent calls to a dead gateway would leave callers
at the IVR waiting. After some failures in a row, calls are refused at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from services.identity.adapters.redis.scripts import lua

log = logging.getLogger("sb.identity.breaker")
T = TypeVar("T")


class BreakerOpen(Exception):
    """Not tried: the service failed too often lately (its circuit breaker is open)."""

    def __init__(self, what: str, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__(f"{what} is failing; retry in {self.retry_after} s")


class CircuitBreaker:
    """Consecutive failures of one external service (a provider on one channel), counted
    by every process through Redis: after ``failures`` in a row, calls are refused at
    once for ``open_seconds``; then one probe at a time goes through, and its success
    closes the breaker (its failure re-opens it)."""

    def __init__(
        self,
        redis: Any,
        name: str,
        *,
        failures: int = 5,
        open_seconds: float = 30,
        probe_seconds: float = 30,
        memory_seconds: float = 300,
    ) -> None:
        self.key = f"idn:breaker:{name}"
        self.name = name
        self.failures = failures
        self.open_ms = int(open_seconds * 1000)
        self.probe_ms = int(probe_seconds * 1000)
        self.memory_ms = int(memory_seconds * 1000)
        self.r = redis
        self._allow = redis.register_script(lua("breaker_allow"))
        self._result = redis.register_script(lua("breaker_result"))

    def allow(self) -> float:
        """0: send now; otherwise the seconds to wait before trying again."""
        return int(self._allow(keys=[self.key], args=[self.probe_ms])) / 1000

    def is_open(self) -> bool:
        """Refusing sends: open, or past its open time with a probe allowed through."""
        return bool(self.r.hexists(self.key, "open_until"))

    def record(self, ok: bool) -> None:
        args = [1 if ok else 0, self.failures, self.open_ms, self.memory_ms]
        changed = int(self._result(keys=[self.key], args=args))
        if changed == 1:
            log.warning(
                "circuit breaker opened: calls refused for a while",
                extra={"breaker": self.name, "open_seconds": self.open_ms / 1000},
            )
        elif changed == 2:
            log.info("circuit breaker closed: the service answers", extra={"breaker": self.name})

    def call(
        self,
        fn: Callable[[], T],
        refused: Callable[[int], BreakerOpen],
        healthy: tuple[type[BaseException], ...] = (),
    ) -> T:
        """``fn()`` unless the breaker is open (then ``refused(seconds to wait)`` is raised),
        recording its outcome. ``healthy``: exceptions that show the service answered (it
        refused this one call), so they count as a success."""
        wait = self.allow()
        if wait > 0:
            raise refused(math.ceil(wait))
        try:
            result = fn()
        except healthy:
            self.record(True)
            raise
        except Exception:
            self.record(False)
            raise
        self.record(True)
        return result
