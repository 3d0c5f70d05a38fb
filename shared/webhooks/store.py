"""Subscriptions, per-subscription queues and the deliveries log, in Redis.

Keys of a service share its hash tag, so every script works on a cluster:

- ``sb:wh:{<service>}:subs``: hash name -> the subscription (JSON, secret sealed);
- ``sb:wh:{<service>}:q:<name>``: list of the bodies still to deliver, oldest first
  (the head is delivered before anything behind it: order per subscription);
- ``sb:wh:{<service>}:state:<name>``: the head's attempts, first failure, next attempt;
- ``sb:wh:{<service>}:lease:<name>``: which worker delivers it now;
- ``sb:wh:{<service>}:log:<name>``: the deliveries log, a stream capped at a length.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.lua import script
from shared.sealing import Sealer

_SETTLE = script("webhook_settle")
_RELEASE = script("webhook_release")


@dataclass
class Subscription:
    name: str
    url: str
    events: list[str]
    secret: str  # sealed at rest; the clear secret only in memory
    enabled: bool = True
    created_at: str = ""
    updated_at: str = ""
    disabled_at: str | None = None
    disabled_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryState:
    attempts: int = 0
    first_failure: float | None = None
    next_at: float = 0.0


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class WebhookStore:
    def __init__(self, redis: Any, service: str, sealer: Sealer, *, log_max: int = 1000) -> None:
        self.redis = redis
        self.service = service
        self.sealer = sealer
        self.log_max = log_max
        self._prefix = f"sb:wh:{{{service}}}"
        self._settle = redis.register_script(_SETTLE)
        self._release = redis.register_script(_RELEASE)

    def key(self, kind: str, name: str = "") -> str:
        return f"{self._prefix}:{kind}:{name}" if name else f"{self._prefix}:{kind}"

    def _aad(self, name: str) -> bytes:
        return f"{self.service}:webhook:{name}".encode()

    # -- subscriptions -------------------------------------------------------------
    def _encode(self, sub: Subscription) -> str:
        record = asdict(sub)
        record["secret"] = self.sealer.seal(sub.secret.encode(), self._aad(sub.name))
        return json.dumps(record)

    def _decode(self, raw: str) -> Subscription | None:
        record = json.loads(raw)
        opened = self.sealer.open(record.get("secret", ""), self._aad(record["name"]))
        if opened is None:  # sealed under a key no longer configured: cannot sign
            return None
        record["secret"] = opened.decode()
        return Subscription(**record)

    def put(self, sub: Subscription) -> None:
        """Create or replace; a re-enabled subscription starts with an empty queue."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key("subs"), sub.name, self._encode(sub))
        if sub.enabled:
            pipe.delete(self.key("state", sub.name))
        pipe.execute()

    def get(self, name: str) -> Subscription | None:
        raw = self.redis.hget(self.key("subs"), name)
        return self._decode(raw) if raw else None

    def all(self) -> list[Subscription]:
        raw = self.redis.hgetall(self.key("subs"))
        found = (self._decode(raw[name]) for name in sorted(raw))
        return [sub for sub in found if sub is not None]

    def routes(self) -> list[tuple[str, list[str]]]:
        """The enabled subscriptions' names and patterns, secrets left sealed: what the
        fan-out reads for every event and the delivery loop at every pass."""
        raw = self.redis.hgetall(self.key("subs"))
        records = (json.loads(raw[name]) for name in sorted(raw))
        return [(r["name"], list(r["events"])) for r in records if r.get("enabled", True)]

    def delete(self, name: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self.key("subs"), name)
        for kind in ("q", "state", "log", "lease"):
            pipe.delete(self.key(kind, name))
        return bool(pipe.execute()[0])

    def disable(self, sub: Subscription, reason: str, stage: Any = None) -> None:
        """Disabled and its queue dropped, with ``stage(pipe)`` (the event) in one step."""
        sub.enabled = False
        sub.disabled_at = now_iso()
        sub.disabled_reason = reason
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key("subs"), sub.name, self._encode(sub))
        pipe.delete(self.key("q", sub.name), self.key("state", sub.name))
        if stage is not None:
            stage(pipe)
        pipe.execute()

    # -- queues --------------------------------------------------------------------
    def stage_enqueue(self, pipe: Any, names: Iterable[str], body: str) -> None:
        for name in names:
            pipe.rpush(self.key("q", name), body)

    def backlog(self, names: list[str]) -> list[tuple[int, RetryState]]:
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.key("q", name))
            pipe.hgetall(self.key("state", name))
        replies = pipe.execute()
        return [(int(replies[2 * i]), _state(replies[2 * i + 1])) for i in range(len(names))]

    def head(self, name: str) -> tuple[str | None, RetryState]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.lindex(self.key("q", name), 0)
        pipe.hgetall(self.key("state", name))
        body, state = pipe.execute()
        return body, _state(state)

    def lease(self, name: str, seconds: float) -> str | None:
        token = os.urandom(12).hex()
        ok = self.redis.set(self.key("lease", name), token, nx=True, px=int(seconds * 1000))
        return token if ok else None

    def release(self, name: str, token: str) -> None:
        self._release(keys=[self.key("lease", name)], args=[token])

    def settle(
        self,
        name: str,
        token: str,
        body: str,
        outcome: str,
        record: dict[str, Any],
        state: RetryState = RetryState(),
    ) -> bool:
        keys = [self.key(k, name) for k in ("lease", "q", "state", "log")]
        args = [
            token,
            body,
            outcome,
            json.dumps(record),
            self.log_max,
            state.attempts,
            "" if state.first_failure is None else repr(state.first_failure),
            repr(state.next_at),
        ]
        return bool(self._settle(keys=keys, args=args))

    # -- the deliveries log -----------------------------------------------------------
    def deliveries(
        self, name: str, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; ``after``: the id of the last entry of the previous page."""
        top = f"({after}" if after else "+"
        rows = self.redis.xrevrange(self.key("log", name), max=top, min="-", count=limit + 1)
        items = [{"id": entry_id, **json.loads(fields["d"])} for entry_id, fields in rows]
        more = items[limit - 1]["id"] if len(items) > limit else None
        return items[:limit], more


def _state(raw: dict[str, str]) -> RetryState:
    if not raw:
        return RetryState()
    first = raw.get("first_failure") or ""
    return RetryState(
        attempts=int(raw.get("attempts", 0)),
        first_failure=float(first) if first else None,
        next_at=float(raw.get("next_at", 0) or 0),
    )
