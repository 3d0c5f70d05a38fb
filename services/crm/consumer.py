"""Stream consumer process of the crm service: `python -m services.crm.consumer`.

Three loops: the outbox relay (SQL outbox -> sb:events:crm, each row once, in
outbox order however many consumer processes relay - see ``shared.sql_outbox``), the
projection of identity/routing events onto customers' timelines (exactly once:
the event id is recorded in crm_inbox in the same SQL transaction), and the KPI
projection of our own case events. ``shared.consumer_main`` adds the fourth:
trimming sb:events:crm past what every consumer group has acknowledged, so
relayed events (a case subject among them) do not outlive their delivery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.crm import bootstrap, metrics
from services.crm.domain.timeline import PROJECTED_TYPES
from services.crm.service import CrmService
from shared import liveness
from shared.bus import Consumer, Delivery
from shared.config import Settings
from shared.consumer_main import Runnable, consumer_name, run
from shared.events import STREAMS, Event

log = logging.getLogger("sb.crm.consumer")


def timeline_consumer(
    service: CrmService, redis: Any, name: str | None, **options: Any
) -> Consumer:
    """Group ``crm`` on the identity and routing streams -> customers' timelines."""

    def project(event: Event, _delivery: Delivery) -> None:
        service.project_event(event)

    return Consumer(
        redis,
        [STREAMS["identity"], STREAMS["routing"]],
        "crm",
        name,
        {event_type: project for event_type in PROJECTED_TYPES},
        **options,
    )


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    wiring = bootstrap.build(settings, redis)
    consumer = timeline_consumer(
        wiring.service, redis, consumer_name("crm"), **settings.consumer_options()
    )

    def relay(stop: threading.Event) -> None:
        idle = settings.float_env("CRM_RELAY_IDLE_SECONDS", 0.1)
        next_prune = 0.0
        while not stop.is_set():
            liveness.stamp(idle)
            if time.monotonic() >= next_prune:
                # Redelivery stops after the bus's 24 h dedupe window; keep ids 7 days.
                wiring.service.prune_inbox(datetime.now(UTC) - timedelta(days=7))
                next_prune = time.monotonic() + 3600
            moved = wiring.relay()
            if not moved:
                stop.wait(idle)

    # The field's indicators (FCR, repeat contacts), folded from our own case events.
    kpi = Consumer(
        redis,
        [STREAMS["crm"]],
        metrics.GROUP,
        consumer_name(metrics.GROUP),
        metrics.handlers(redis),
        **settings.consumer_options(),
    )
    # After an erasure: the deleted rows' bytes out of the WAL / dead tuples.
    compact = wiring.compaction_loop()
    return [consumer.run, kpi.run, relay, compact]


if __name__ == "__main__":
    run("crm", build)
