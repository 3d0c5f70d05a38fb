"""Routing's KPI projection: routing.task.assigned -> first response per category.

Run by the routing consumer process (group ``routing-kpi`` on
``sb:events:routing``); read by ``GET /v1/stats`` (``reporting.py``, through the
store's ``kpi_window``). The folding rules are the domain's
(``services.routing.domain.kpis``); this module only touches Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.routing.domain.kpis import assigned_counters
from shared.bus import Delivery, Handler
from shared.events import Event
from shared.kpis import BucketCounters, occurred_epoch

GROUP = "routing-kpi"


def handlers(redis: Any, sla_targets: Mapping[str, float]) -> dict[str, Handler]:
    counters = BucketCounters(redis, GROUP)

    def assigned(event: Event, delivery: Delivery) -> None:
        with delivery.atomic() as pipe:
            counters.stage(pipe, occurred_epoch(event), assigned_counters(event.data, sla_targets))

    return {"routing.task.assigned": assigned}
