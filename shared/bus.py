"""The Redis-streams event bus: publish, consume with groups, reclaim, dead-letter.

Delivery is at least once. A consumer

- creates its group idempotently (from the start of the stream, so nothing
  published before the first consumer started is lost);
- reads batches with ``XREADGROUP COUNT n BLOCK ms`` and handles the entries
  of one stream in order;
- skips events whose id it has already processed (ids kept with a TTL) and
  acknowledges in one pipelined round trip after the handlers returned;
- reclaims entries idle past the visibility timeout (``XAUTOCLAIM``) - the
  pending entries of a consumer that died;
- moves an entry delivered ``max_deliveries`` times without success to
  ``sb:dead:<stream>`` with its last error, so the stream keeps flowing.

Round trips per batch: one check of the processed ids (a script),
and one pipeline that carries the previous batch's ``SADD`` + ``XACK`` and the
next read; failures cost extra only when they happen.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis as redis_lib
from redis.cluster import RedisCluster

from shared import liveness
from shared.events import Event, MalformedEvent, dead_stream
from shared.logs import request_id_var
from shared.lua import script
from shared.metrics import process_metrics

log = logging.getLogger("sb.bus")

DEFAULT_MAXLEN = 1_000_000


class EventPublisher:
    """Appends events to one stream, trimmed approximately at ``maxlen``."""

    def __init__(self, redis: Any, stream: str, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen

    def publish(self, event: Event) -> str:
        # The client is untyped here (a Redis or a RedisCluster): the reply is the entry id.
        fields = event.to_fields()
        return cast(str, self.redis.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True))

    def publish_many(self, events: Sequence[Event]) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            self.stage(pipe, event)
        return cast(list[str], pipe.execute())

    def stage(self, pipe: Any, event: Event) -> None:
        """Add the XADD to the caller's pipeline, so state and event commit together."""
        pipe.xadd(self.stream, event.to_fields(), maxlen=self.maxlen, approximate=True)


class AlreadyProcessed(Exception):
    """Raised out of ``Delivery.atomic`` when a concurrent duplicate won the race."""


class Delivery:
    """One stream entry handed to a handler."""

    __slots__ = ("stream", "entry_id", "event", "deliveries", "redis", "consumer", "recorded")

    def __init__(
        self,
        stream: str,
        entry_id: str,
        event: Event,
        deliveries: int,
        redis: Any,
        consumer: Consumer,
    ) -> None:
        self.stream = stream
        self.entry_id = entry_id
        self.event = event
        self.deliveries = deliveries
        self.redis = redis
        self.consumer = consumer
        self.recorded = False

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Any]:
        """A MULTI pipeline that also records the event as processed: exactly once in Redis.

        A per-event marker is WATCHed, so if another consumer handled the same
        event meanwhile nothing of this transaction is applied.
        """
        consumer = self.consumer
        marker = consumer.marker_key(self.event.id)
        buckets = consumer.bucket_keys()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(marker)
            if pipe.exists(marker) or any(pipe.sismember(b, self.event.id) for b in buckets):
                raise AlreadyProcessed(self.event.id)
            pipe.multi()
            yield pipe
            pipe.set(marker, "1", ex=consumer.processed_ttl)
            consumer.stage_marks(pipe, [self.event.id])
            try:
                pipe.execute()
            except redis_lib.WatchError:
                raise AlreadyProcessed(self.event.id) from None
        self.recorded = True


Handler = Callable[[Event, Delivery], None]

_SEEN = script("bus_seen")  # which of the event ids were processed


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0


class Consumer:
    def __init__(
        self,
        redis: Any,
        streams: Sequence[str],
        group: str,
        name: str | None,
        handlers: Mapping[str, Handler],
        *,
        batch: int = 100,
        block_ms: int = 1000,
        visibility_timeout_ms: int = 30_000,
        max_deliveries: int = 5,
        processed_ttl: int = 86400,
        dead_maxlen: int = 100_000,
        metrics: Any = None,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be >= 1")
        self.redis = redis
        self.streams = list(streams)
        self.group = group
        self.name = name or f"{socket.gethostname()}-{id(self):x}"
        self.handlers = dict(handlers)
        self.batch = batch
        self.block_ms = block_ms
        self.visibility_timeout_ms = visibility_timeout_ms
        self.max_deliveries = max_deliveries
        self.processed_ttl = processed_ttl
        self.dead_maxlen = dead_maxlen
        # A consumer process's metrics (shared/consumer_main.py) unless given others.
        self.metrics = metrics if metrics is not None else process_metrics()
        self.stats = ConsumerStats()
        self._groups_ready = False
        self._next_reclaim = 0.0
        # On a cluster the streams live in different slots: one read per stream.
        self._cluster = isinstance(redis, RedisCluster)
        self._per_stream_reads = self._cluster and len(self.streams) > 1
        self._seen_script = redis.register_script(_SEEN)

        # Acks and processed markers of a full batch ride with the next read.
        self._deferred: list[tuple[str, list[str], set[str]]] = []

    # -- setup ---------------------------------------------------------------
    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis_lib.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    # Processed event ids live in one set per TTL-long time bucket: a batch is
    # checked with one script call and recorded with one SADD, and memory stays
    # small. All keys of a group share its hash tag, so this works on a cluster.
    def bucket_keys(self, now: float | None = None) -> tuple[str, str]:
        """The current and the previous bucket: an id is remembered ttl to 2*ttl."""
        bucket = int((time.time() if now is None else now) // self.processed_ttl)
        prefix = f"sb:processed:{{{self.group}}}"
        return f"{prefix}:{bucket}", f"{prefix}:{bucket - 1}"

    def marker_key(self, event_id: str) -> str:
        """Per-event marker, WATCHed by ``Delivery.atomic`` against concurrent duplicates."""
        return f"sb:processed:{{{self.group}}}:event:{event_id}"

    def stage_marks(self, pipe: Any, event_ids: list[str]) -> None:
        current, _ = self.bucket_keys()
        pipe.sadd(current, *event_ids)
        pipe.expire(current, 2 * self.processed_ttl + 3600)

    def already_processed(self, event_ids: list[str]) -> list[bool]:
        if not event_ids:
            return []
        return [n > 0 for n in self._seen_script(keys=self.bucket_keys(), args=event_ids)]

    def _error_key(self, stream: str, entry_id: str) -> str:
        return f"sb:error:{self.group}:{stream}:{entry_id}"

    # -- loop ----------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set; the batch in hand is always finished first."""
        while not stop.is_set():
            liveness.stamp(self.block_ms / 1000)  # a pass begins: the last one ended
            try:
                self.run_once()
            except redis_lib.ConnectionError as exc:
                log.warning("redis unavailable, retrying", extra={"error": str(exc)})
                stop.wait(1.0)
        self.flush()

    def flush(self) -> None:
        """Send the acknowledgements and processed markers still held back."""
        if self._deferred:
            pipe = self.redis.pipeline(transaction=False)
            self._stage_deferred(pipe)
            pipe.execute()

    def _stage_deferred(self, pipe: Any) -> None:
        deferred, self._deferred = self._deferred, []
        for stream, ack, mark in deferred:
            if mark:
                self.stage_marks(pipe, list(mark))
            if ack:
                pipe.xack(stream, self.group, *ack)

    def _read(
        self, streams: list[str], block: int
    ) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """One round trip: the acks the last full batch left, then the read."""
        held = list(self._deferred)
        pipe = self.redis.pipeline(transaction=False)
        self._stage_deferred(pipe)
        pipe.xreadgroup(
            self.group, self.name, {s: ">" for s in streams}, count=self.batch, block=block or None
        )
        try:
            response = pipe.execute()[-1]
        except redis_lib.RedisError:
            # Kept for the next try (acks and marks are idempotent): dropped, the entries
            # would be reclaimed and handled again after a blip.
            self._deferred = held + self._deferred
            raise
        return _streams_of(response)

    def run_once(self, *, block_ms: int | None = None) -> int:
        """Reclaim if due, then read and handle one batch; returns entries handled."""
        if not self._groups_ready:
            self.ensure_groups()
        count = 0
        now = time.monotonic()
        if now >= self._next_reclaim:
            # A slow full batch's acks are still held back: sent first, or this consumer
            # would reclaim (and handle again) entries it has finished itself.
            self.flush()
            count += self.reclaim()
            self._next_reclaim = now + max(self.visibility_timeout_ms / 2000, 0.01)
        block = self.block_ms if block_ms is None else block_ms
        if self._per_stream_reads:
            reads = [[s] for s in self.streams]
            block = max(1, block // len(self.streams)) if block else 0
        else:
            reads = [self.streams]
        full = False
        for streams in reads:
            try:
                batches = self._read(streams, block)
            except redis_lib.ResponseError as exc:
                if "NOGROUP" in str(exc):  # stream deleted under us: recreate and go on
                    self._groups_ready = False
                    return count
                raise
            for stream, entries in batches:
                full = full or len(entries) >= self.batch
                count += self._handle_batch(stream, entries, {})
        if not full:  # idle soon: acknowledge now rather than with the next read
            self.flush()
        return count

    def reclaim(self) -> int:
        """Take over entries idle past the visibility timeout (a dead consumer's)."""
        total = 0
        for stream in self.streams:
            start = "0-0"
            while True:
                result = self.redis.xautoclaim(
                    stream,
                    self.group,
                    self.name,
                    min_idle_time=self.visibility_timeout_ms,
                    start_id=start,
                    count=self.batch,
                )
                start, entries = result[0], result[1]
                live = [(eid, f) for eid, f in entries if f]
                gone = [eid for eid, f in entries if not f]
                if gone:  # trimmed or deleted while pending: nothing left to handle
                    self.redis.xack(stream, self.group, *gone)
                if live:
                    counts = self._delivery_counts(stream, live)
                    self.stats.reclaimed += len(live)
                    total += self._handle_batch(stream, live, counts)
                    liveness.stamp(self.block_ms / 1000)  # a long reclaim is progress too
                if start in ("0-0", "0") or not entries:
                    break
        return total

    def _delivery_counts(self, stream: str, entries: list[tuple[str, Any]]) -> dict[str, int]:
        rows = self.redis.xpending_range(
            stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) + 10,
            consumername=self.name,
        )
        return {row["message_id"]: int(row["times_delivered"]) for row in rows}

    # -- handling ------------------------------------------------------------
    def _handle_batch(
        self,
        stream: str,
        entries: list[tuple[str, dict[str, str]]],
        counts: dict[str, int],
    ) -> int:
        handlers = self.handlers
        fallback = handlers.get("*")
        ack: list[str] = []
        parsed: list[tuple[str, Event, Handler, str]] = []
        for entry_id, fields in entries:
            handler = handlers.get(fields.get("type", ""), fallback)
            if handler is None:
                ack.append(entry_id)  # not an event this group cares about: no parsing
                continue
            try:
                event = Event.from_fields(fields)
            except MalformedEvent as exc:  # can never succeed: no point retrying
                self._dead_letter(stream, entry_id, fields, str(exc), counts.get(entry_id, 1))
                continue
            parsed.append((entry_id, event, handler, event.id))

        seen = self.already_processed([p[3] for p in parsed])

        mark: set[str] = set()
        handled = 0
        for (entry_id, event, handler, event_id), done in zip(parsed, seen, strict=True):
            if done or event_id in mark:  # earlier, or earlier in this very batch
                self.stats.duplicates += 1
                self._count("duplicate", event.type)
                ack.append(entry_id)
                continue
            deliveries = counts.get(entry_id, 1)
            if deliveries > self.max_deliveries:
                # Delivered too often already (e.g. it crashed the consumer): stop here.
                error = self.redis.get(self._error_key(stream, entry_id)) or (
                    "consumer died while handling it"
                )
                self._dead_letter(stream, entry_id, event.to_fields(), error, deliveries)
                continue
            delivery = Delivery(stream, entry_id, event, deliveries, self.redis, self)
            token = request_id_var.set(event.correlation_id or None)
            try:
                handler(event, delivery)
            except AlreadyProcessed:
                self.stats.duplicates += 1
                self._count("duplicate", event.type)
                ack.append(entry_id)
                continue
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried
                self.stats.failed += 1
                self._count("failed", event.type)
                error = f"{type(exc).__name__}: {exc}"
                log.exception(
                    "handler failed",
                    extra={"event_id": event.id, "event_type": event.type, "stream": stream},
                )
                if deliveries >= self.max_deliveries:
                    self._dead_letter(stream, entry_id, event.to_fields(), error, deliveries)
                else:
                    self.redis.set(self._error_key(stream, entry_id), error[:2000], ex=86400)
                continue
            finally:
                request_id_var.reset(token)
            handled += 1
            if self.metrics is not None:
                self._count("handled", event.type)
            ack.append(entry_id)
            if not delivery.recorded:
                mark.add(event_id)

        self.stats.handled += handled
        if ack or mark:
            self._deferred.append((stream, ack, mark))
        return handled

    def _dead_letter(
        self, stream: str, entry_id: str, fields: Mapping[str, str], error: str, deliveries: int
    ) -> None:
        body = dict(fields)
        body.update(
            {
                "error": error[:2000],
                "deliveries": str(deliveries),
                "group": self.group,
                "stream": stream,
                "entry_id": entry_id,
                "dead_at": str(int(time.time() * 1000)),
            }
        )
        # Dead-letter first, then ack: a crash in between duplicates, never loses.
        self.redis.xadd(dead_stream(stream), body, maxlen=self.dead_maxlen, approximate=True)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(stream, self.group, entry_id)
        pipe.delete(self._error_key(stream, entry_id))
        pipe.execute()
        self.stats.dead_lettered += 1
        self._count("dead_lettered", fields.get("type", "?"))
        log.error(
            "event dead-lettered",
            extra={"stream": stream, "entry_id": entry_id, "deliveries": deliveries},
        )

    def _count(self, outcome: str, event_type: str) -> None:
        if self.metrics is not None:
            self.metrics.consumer_events.labels(self.group, event_type, outcome).inc()


def _streams_of(response: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREADGROUP's reply as (stream, entries) pairs for RESP2 and RESP3 alike."""
    if not response:
        return []
    if isinstance(response, dict):
        return [(s, v[0] if v and isinstance(v[0], list) else v) for s, v in response.items()]
    return [(s, entries) for s, entries in response]
