"""The delivery worker: ``python -m shared.webhooks.worker`` (all three services).

Per service, two runnables under ``shared.consumer_main``'s supervision (heartbeat file
``<SB_VAR_DIR>/run/webhook-worker.alive``):

- a ``shared.bus.Consumer`` of the service's stream in the group ``webhooks``: each event
  is appended to the queue of every enabled subscription whose patterns match it, in the
  same transaction that records the event as processed (fan-out exactly once);
- a delivery loop: every subscription with a due head is delivered by a thread of a
  pool, under a lease in Redis, one event at a time: the next waits for the current
  one (order per subscription). A failure waits ``Backoff.delay(attempt)``; an event
  still failing after ``WEBHOOK_RETRY_PERIOD_SECONDS`` disables the subscription, drops
  its queue and publishes ``<service>.webhook.disabled``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from shared import liveness
from shared.bus import Consumer, Delivery, EventPublisher
from shared.config import Settings
from shared.consumer_main import Runnable, consumer_name, run
from shared.events import STREAMS, Event
from shared.webhooks import domain, sender
from shared.webhooks.config import WebhookConfig
from shared.webhooks.domain import InvalidWebhook
from shared.webhooks.store import RetryState, Subscription, WebhookStore

log = logging.getLogger("sb.webhooks")

GROUP = "webhooks"

Clock = Callable[[], float]


def envelope_body(event: Event) -> str:
    """The delivered body: the event envelope, ``data`` as an object."""
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "version": event.version,
            "occurred_at": event.occurred_at,
            "source": event.source,
            "correlation_id": event.correlation_id,
            "data": dict(event.data),
        }
    ).decode()


def fan_out(store: WebhookStore) -> Callable[[Event, Delivery], None]:
    def handle(event: Event, delivery: Delivery) -> None:
        names = [name for name, events in store.routes() if domain.matches_any(events, event.type)]
        if not names:
            return
        with delivery.atomic() as pipe:
            store.stage_enqueue(pipe, names, envelope_body(event))

    return handle


class Deliverer:
    """Delivers the queues of one service's subscriptions."""

    def __init__(
        self,
        store: WebhookStore,
        publisher: EventPublisher,
        config: WebhookConfig,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.config = config
        self.clock = clock
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def due(self) -> list[str]:
        subs = [name for name, _ in self.store.routes()]
        now = self.clock()
        return [
            name
            for name, (length, state) in zip(subs, self.store.backlog(subs), strict=True)
            if length and state.next_at <= now
        ]

    def run(self, stop: threading.Event) -> None:
        with ThreadPoolExecutor(self.config.concurrency, "webhook") as pool:
            while not stop.is_set():
                liveness.stamp(self.config.poll)
                try:
                    for name in self.due():
                        with self._lock:
                            if name in self._busy:
                                continue
                            self._busy.add(name)
                        pool.submit(self._drain, name, stop)
                except Exception:  # noqa: BLE001 - Redis blips: the next pass retries
                    log.exception("webhook pass failed")
                stop.wait(self.config.poll)

    def _drain(self, name: str, stop: threading.Event) -> None:
        try:
            while not stop.is_set() and self.attempt(name):
                pass
        except Exception:  # noqa: BLE001 - logged; the next pass retries
            log.exception("webhook delivery failed", extra={"webhook": name})
        finally:
            with self._lock:
                self._busy.discard(name)

    def attempt(self, name: str) -> bool:
        """Attempt the head of ``name``'s queue once; True if delivered (go on)."""
        lease = self.store.lease(name, self.config.timeout * 3 + 30)
        if lease is None:
            return False  # another worker has it
        sub = self.store.get(name)
        body, state = self.store.head(name)
        if sub is None or not sub.enabled or body is None or state.next_at > self.clock():
            self.store.release(name, lease)
            return False
        event = orjson.loads(body)
        attempt = state.attempts + 1
        record: dict[str, Any] = {
            "event_id": event["id"],
            "event_type": event["type"],
            "attempt": attempt,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock())),
        }
        try:
            target = self.config.targets.check(sub.url)
        except InvalidWebhook as exc:
            outcome = sender.Outcome(False, None, f"refused: {exc.message}", 0)
        else:
            data = body.encode()
            timestamp = int(self.clock())
            headers = domain.headers(sub.secret, event["id"], timestamp, data)
            outcome = sender.post(target, data, headers, self.config.timeout)
        record |= {
            "status_code": outcome.status,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
        }
        if outcome.ok:
            self.store.settle(name, lease, body, "delivered", record | {"outcome": "delivered"})
            return True
        now = self.clock()
        first = state.first_failure if state.first_failure is not None else now
        if self.config.backoff.exhausted(first, now):
            self.store.settle(name, lease, body, "failed", record | {"outcome": "failed"})
            self._disable(sub, event["id"])
            return False
        retry = RetryState(attempt, first, now + self.config.backoff.delay(attempt))
        self.store.settle(name, lease, body, "retrying", record | {"outcome": "retrying"}, retry)
        return False

    def _disable(self, sub: Subscription, event_id: str) -> None:
        service = self.store.service
        event = Event.new(
            f"{service}.webhook.disabled",
            {"name": sub.name, "reason": "failing", "event_id": event_id},
            source=service,
        )
        self.store.disable(sub, "failing", lambda pipe: self.publisher.stage(pipe, event))
        log.warning("webhook disabled after persistent failure", extra={"webhook": sub.name})


def build(
    settings: Settings, redis: Any, services: Sequence[str] = tuple(STREAMS)
) -> list[Runnable]:
    config = WebhookConfig.from_settings(settings)
    found: list[Runnable] = []
    for service in services:
        store = WebhookStore(redis, service, config.sealer, log_max=config.log_max)
        consumer = Consumer(
            redis,
            [STREAMS[service]],
            GROUP,
            consumer_name(f"webhooks-{service}"),
            {"*": fan_out(store)},
            **settings.consumer_options(),
        )
        publisher = EventPublisher(redis, STREAMS[service], settings.stream_maxlen)
        found += [consumer.run, Deliverer(store, publisher, config).run]
    return found


def main() -> None:
    run("webhooks", build, process="webhook-worker")


if __name__ == "__main__":
    main()
