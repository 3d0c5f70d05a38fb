"""A process-local read cache over Redis that Redis itself keeps coherent.

Hot reads (a session behind a token, the sessions of a caller an IVR asks
about) would otherwise cost a network round trip each, and on a small machine
that round trip is most of a request. This is Redis's server-assisted
client-side caching (``CLIENT TRACKING``, Redis >= 6) in broadcast mode: one
connection per primary asks to be told of every write under the given key
prefixes and receives the notices itself (RESP2: redirected to its own id,
subscribed to ``__redis__:invalidate``).

Why a stale answer cannot follow a write: Redis queues the notice in the same
event-loop pass that answers the writer, and every cached read first drains
its notice connection without blocking. By the time anyone could have learned
of a write (the writer's reply, then an HTTP answer, then a new request) the
notice is already in this process's socket. A read concurrent with a write may
see either value, as without a cache. FLUSHALL and FLUSHDB are the exception:
Redis queues their notice before the reply, which puts it on the wire just after
the reply, so the flusher's own process may read a copy for a moment after its
FLUSHALL returned (about 1 read in 100 right after it, measured under load).
The services never flush; tests that do wait for the notice.

Failure: if a notice connection breaks, stops answering its heartbeat for
three seconds (a host gone without a word), or the set of primaries changes,
the cache empties and is bypassed (every read goes to Redis) until the notice
connections are back. The state stays in Redis; a process only holds copies.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from redis.cluster import RedisCluster

log = logging.getLogger("sb.tracking")

CHANNEL = "__redis__:invalidate"
CACHEABLE = frozenset({"GET", "HGET", "HGETALL", "SMEMBERS", "EXISTS"})
_MISSING = object()
POLL = 0.05
# A half-open connection (a host gone without a word) would never report an error:
# a heartbeat every HEARTBEAT seconds, unanswered for SILENCE, stops the cache.
HEARTBEAT = 1.0
SILENCE = 3.0
TOPOLOGY = 5.0  # seconds between asking a cluster for its primaries
Read = tuple[str, ...]  # (command, key, *args): one cacheable read


class _Notices:
    """One node's notice connection: tracking in broadcast mode, redirected to itself.

    Redirect and subscribe make it work with either protocol: RESP2 hears notices
    as messages on the channel, RESP3 as pushes.
    """

    def __init__(self, client: Any, prefixes: Sequence[str]) -> None:
        pool = client.connection_pool
        self.conn = pool.connection_class(**pool.connection_kwargs)
        self.conn.connect()
        # RESP3 delivers notices as "invalidate" pushes, which redis-py drops unless asked.
        self.conn._parser.set_invalidation_push_handler(lambda push: push)
        self.conn.send_command("CLIENT", "ID", check_health=False)
        own_id = self.conn.read_response()
        options = [word for prefix in prefixes for word in ("PREFIX", prefix)]
        self.conn.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *options, check_health=False
        )
        self.conn.read_response()
        self.conn.send_command("SUBSCRIBE", CHANNEL, check_health=False)
        self.conn.read_response(push_request=True)  # RESP3 answers SUBSCRIBE with a push
        # After a full drain the parser holds no whole message, so "nothing pending"
        # is one poll() of the socket: redis-py's can_read() costs several times that.
        self._poll = select.poll()
        self._poll.register(self.conn._sock, select.POLLIN)
        self.pinged = self.answered = time.monotonic()
        self.backlog = self._read_all()

    def ping(self) -> None:
        """A heartbeat: a connection that stops answering may also miss notices."""
        self.conn.send_command("PING", check_health=False)
        if self.pinged <= self.answered:  # the clock runs from the oldest unanswered one
            self.pinged = time.monotonic()

    def silent_for(self) -> float:
        """Seconds the oldest unanswered heartbeat has waited (0 when none waits)."""
        return time.monotonic() - self.pinged if self.pinged > self.answered else 0.0

    def drain(self) -> list[list[str] | None]:
        """The notices waiting, without blocking; ``None`` means "forget everything"."""
        backlog, self.backlog = self.backlog, []
        if not self._poll.poll(0):
            return backlog
        return backlog + self._read_all()

    def _read_all(self) -> list[list[str] | None]:
        out: list[list[str] | None] = []
        while self.conn.can_read(timeout=0):
            message = self.conn.read_response(push_request=True)
            if message == "PONG" or (isinstance(message, list) and message[:1] == ["pong"]):
                self.answered = time.monotonic()  # RESP3 / RESP2 (subscribed) heartbeat answer
                continue
            if not isinstance(message, list) or not message:
                continue
            if message[0] == "invalidate" and len(message) == 2:  # RESP3
                out.append(message[1])
            elif message[0] == "message" and len(message) == 3:  # RESP2, via the channel
                out.append(message[2])
        return out

    def close(self) -> None:
        self.conn.disconnect()


class TrackedCache:
    """Read-through cache of ``CACHEABLE`` reads of keys under ``prefixes``.

    Only keys under a tracked prefix may be read through it: a write elsewhere
    would never be heard of. Holds at most ``max_keys`` Redis keys (oldest first
    out). Safe across threads; after a fork the child starts empty.
    """

    def __init__(self, redis: Any, prefixes: Sequence[str], max_keys: int = 100_000) -> None:
        self.r = redis
        self.prefixes = tuple(prefixes)
        self.max_keys = max_keys
        self.cluster = isinstance(redis, RedisCluster)
        self.hits = self.misses = self.resets = 0
        # Told (hits, misses, resets) as they happen, e.g. prometheus counters.
        self.observer: Callable[[int, int, int], None] | None = None
        self._lock = threading.Lock()
        self._entries: dict[str, dict[Read, Any]] = {}
        self._generation = 0  # bumped by every notice: a fill that raced one is not kept
        self._notices: list[_Notices] = []
        self._primaries: frozenset[str] = frozenset()
        self._live = False
        self._retry_at = 0.0
        self._pid = 0
        self._closed = False
        self._checked = 0.0
        self._pinged = 0.0
        self._failed_opens = 0

    # -- reads -------------------------------------------------------------------
    def fetch(self, reads: Sequence[Read]) -> list[Any]:
        """The answers to ``reads``, from the cache or in one pipeline to Redis."""
        results: list[Any] = [_MISSING] * len(reads)
        with self._lock:
            live = self._refresh()
            generation = self._generation
            if live:
                for i, read in enumerate(reads):
                    results[i] = self._entries.get(read[1], {}).get(read, _MISSING)
            missing = [i for i, value in enumerate(results) if value is _MISSING]
            self.hits += len(reads) - len(missing)
            self.misses += len(missing)
        if self.observer is not None:
            self.observer(len(reads) - len(missing), len(missing), 0)
        if missing:
            for i in missing:  # only a checked read is ever cached, so hits need no check
                if reads[i][0] not in CACHEABLE or not reads[i][1].startswith(self.prefixes):
                    raise ValueError(f"not a tracked read: {reads[i][0]} {reads[i][1]}")
            values = self._load([reads[i] for i in missing])
            with self._lock:
                keep = live and self._refresh() and self._generation == generation
                for i, value in zip(missing, values, strict=True):
                    results[i] = value
                    if keep:
                        self._entries.setdefault(reads[i][1], {})[reads[i]] = value
                if keep and len(self._entries) > self.max_keys:
                    for key in list(islice(self._entries, len(self._entries) - self.max_keys)):
                        del self._entries[key]
        return [_copy(value) for value in results]

    def _load(self, reads: Sequence[Read]) -> list[Any]:
        return read_through(self.r, reads)

    # -- coherence -----------------------------------------------------------------
    def _refresh(self, reopen: bool = False) -> bool:
        """Under the lock: apply waiting notices. Live?

        Connections open on first use; after a failure the listener reopens them,
        so a request never waits on a reconnect."""
        if self._pid != _pid:  # first use in this process, or a forked child
            self._pid = _pid
            self._entries.clear()
            self._notices, self._live, self._retry_at = [], False, 0.0
            if not self._closed:
                threading.Thread(
                    target=_listen, args=(weakref.ref(self),), name="sb-tracking", daemon=True
                ).start()
        due = reopen and time.monotonic() >= self._retry_at
        if not self._live and not self._closed and (due or self._retry_at == 0.0):
            self._open()
        if self._live:
            try:
                for notices in self._notices:
                    self._apply(notices.drain())
                    if notices.silent_for() > SILENCE:
                        raise ConnectionError("the notice connection stopped answering")
            except Exception as exc:  # noqa: BLE001 - any failure: stop trusting copies
                self._fail(exc)
        return self._live

    def _open(self) -> None:
        try:
            nodes = self.r.get_primaries() if self.cluster else [None]
            clients = [self.r.get_redis_connection(n) if n else self.r for n in nodes]
            self._notices = [_Notices(client, self.prefixes) for client in clients]
            self._primaries = frozenset(n.name for n in nodes if n is not None)
            self._entries.clear()  # anything kept from before may have missed a notice
            self._generation += 1
            self._live = True
            self._failed_opens = 0
        except Exception as exc:  # noqa: BLE001
            if not self._failed_opens:  # e.g. CLIENT TRACKING refused by an ACL: say it once
                log.warning("read cache unavailable, reads go to Redis", extra={"error": repr(exc)})
            self._fail(exc)
            self._failed_opens += 1
            # Back off to one try every 30 s: a server that refuses stays refusing.
            self._retry_at = time.monotonic() + min(30.0, 2.0**self._failed_opens)

    def _fail(self, exc: BaseException | None) -> None:
        if self._live and not self._closed:
            self.resets += 1
            if self.observer is not None:
                self.observer(0, 0, 1)
            log.warning("read cache off until Redis notices resume", extra={"error": repr(exc)})
        for notices in self._notices:
            try:
                notices.close()
            except Exception:  # noqa: BLE001,S110 - closing a broken connection
                pass
        self._notices, self._live = [], False
        self._entries.clear()
        self._generation += 1
        self._retry_at = time.monotonic() + 1.0

    def _apply(self, batches: list[list[str] | None]) -> None:
        for keys in batches:
            self._generation += 1
            if keys is None:
                self._entries.clear()
            else:
                for key in keys:
                    self._entries.pop(key, None)

    def _wait(self) -> bool:
        """Between reads: apply notices every ``POLL`` seconds, so Redis never holds a
        backlog for us, and reopen after a failure. False once there is nothing to do.

        Polling, not waking on each notice: under a burst of writes one pass takes
        them all, and a read drains what is pending itself anyway."""
        time.sleep(POLL)
        primaries = self._current_primaries() if self.cluster else None
        with self._lock:
            if self._pid != _pid or self._closed:
                return False
            self._refresh(reopen=True)
            if self._live and time.monotonic() - self._pinged > HEARTBEAT:
                self._pinged = time.monotonic()
                try:
                    for notices in self._notices:
                        notices.ping()
                except Exception as exc:  # noqa: BLE001
                    self._fail(exc)
            if self._live and isinstance(primaries, BaseException):
                self._fail(primaries)
            elif self._live and primaries is not None and primaries != self._primaries:
                self._fail(None)  # a primary we do not hear from: reopen against all
        return True

    def _current_primaries(self) -> frozenset[str] | BaseException | None:
        """Every ``TOPOLOGY`` seconds, the cluster's primaries as the cluster says now.
        The client's own view changes only on a MOVED reply, which a hit never meets."""
        if time.monotonic() - self._checked < TOPOLOGY:
            return None
        self._checked = time.monotonic()
        try:
            self.r.nodes_manager.initialize()
            return frozenset(n.name for n in self.r.get_primaries())
        except Exception as exc:  # noqa: BLE001
            return exc

    @property
    def live(self) -> bool:
        with self._lock:
            return self._refresh()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._fail(None)


_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _listen(ref: weakref.ref[TrackedCache]) -> None:
    # Holds the cache only while working: a cache nobody uses any more is collected.
    while (cache := ref()) is not None and cache._wait():
        del cache


def read_through(redis: Any, reads: Sequence[Read]) -> list[Any]:
    """``reads`` answered by Redis itself: one command, or one pipeline."""
    if len(reads) == 1:
        return [redis.execute_command(*reads[0])]
    with redis.pipeline(transaction=False) as pipe:
        for read in reads:
            pipe.execute_command(*read)
        replies: list[Any] = pipe.execute()
        return replies


def _copy(value: Any) -> Any:
    # Callers own what they get: a cached set or dict is never handed out itself.
    if isinstance(value, dict | set | list):
        return value.copy()
    return value
