"""Routing's KPI projection: routing.task.assigned -> first response per category.

Run by the routing consumer process (group ``routing-kpi`` on
``sb:events:routing``); read by ``GET /v1/stats``. The folding rules are the
domain's (``services.routing.domain.kpis``); this module only touches Redis.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from services.routing.domain.kpis import FIELD_BENCHMARK_SECONDS, assigned_counters, first_response
from services.routing.domain.model import CATEGORIES
from shared.bus import Delivery, Handler
from shared.events import Event, utcnow_iso
from shared.kpis import BucketCounters, occurred_epoch

GROUP = "routing-kpi"


def handlers(redis: Any, sla_targets: Mapping[str, float]) -> dict[str, Handler]:
    counters = BucketCounters(redis, GROUP)

    def assigned(event: Event, delivery: Delivery) -> None:
        with delivery.atomic() as pipe:
            counters.stage(pipe, occurred_epoch(event), assigned_counters(event.data, sla_targets))

    return {"routing.task.assigned": assigned}


def stats(redis: Any, window_seconds: int, sla_targets: Mapping[str, float]) -> dict[str, Any]:
    totals = BucketCounters(redis, GROUP).window(window_seconds, time.time())
    return {
        "window_seconds": window_seconds,
        "generated_at": utcnow_iso(),
        "field_benchmark_seconds": FIELD_BENCHMARK_SECONDS,
        "first_response": first_response(totals, list(CATEGORIES), sla_targets),
    }
