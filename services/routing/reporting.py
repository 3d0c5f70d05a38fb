"""Statistics use cases: queues, agent totals (also /metrics) and first-response KPIs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.domain.kpis import FIELD_BENCHMARK_SECONDS, first_response
from services.routing.domain.model import AGENT_STATUSES, CATEGORIES, iso
from services.routing.domain.stats import window_minutes
from services.routing.ports import StatsStore
from shared.events import utcnow_iso


class ReportingUseCases:
    def __init__(self, store: StatsStore, config: RoutingConfig, now: Callable[[], int]) -> None:
        self.store = store
        self.config = config
        self.now = now

    def queue_stats(self) -> dict[str, Any]:
        now = self.now()
        channels = self.store.channels()
        waiting = self.store.waiting(CATEGORIES, channels)
        available = self.store.available_counts(channels)
        totals = self.store.answered(window_minutes(now))
        items = []
        for category in CATEGORIES:
            for channel in channels:
                depth = waiting[(category, channel)]
                oldest = depth.oldest_created_ms
                answered = totals.get((category, channel))
                items.append(
                    {
                        "category": category,
                        "channel": channel,
                        "waiting": depth.count,
                        "longest_wait_seconds": round((now - oldest) / 1000, 3)
                        if oldest is not None
                        else 0.0,
                        "agents_available": available.get(channel, 0),
                        "answered": answered.answered if answered else 0,
                        "service_level": answered.service_level if answered else None,
                        "average_speed_of_answer_seconds": answered.average_speed_of_answer
                        if answered
                        else None,
                        "sla_target_seconds": self.config.priority.sla_seconds[category],
                    }
                )
        return {"window_seconds": 3600, "generated_at": iso(now), "items": items}

    def agent_totals(self) -> dict[str, Any]:
        """Agents per status; busy slots, capacity of the agents not offline and their
        occupancy (busy / capacity, as /v1/stats/agents per agent) per channel; without
        reading any agent."""
        totals = self.store.agent_totals()
        busy, capacity = totals.busy_slots, totals.capacity_slots
        channels = sorted(set(busy) | set(capacity))
        return {
            "by_status": {s: totals.by_status.get(s, 0) for s in AGENT_STATUSES},
            "busy_slots": dict(busy),
            "capacity_slots": {ch: max(0, capacity.get(ch, 0)) for ch in channels},
            "occupancy": {
                ch: round(min(1.0, busy.get(ch, 0) / capacity[ch]), 4)
                if capacity.get(ch, 0) > 0
                else 0.0
                for ch in channels
            },
        }

    def kpi_stats(self, window_seconds: int) -> dict[str, Any]:
        """First response per category over the window, from the assignment events."""
        sla = self.config.priority.sla_seconds
        # Wall time, not the routing clock: the buckets are filed by event time.
        totals = self.store.kpi_window(window_seconds, time.time())
        return {
            "window_seconds": window_seconds,
            "generated_at": utcnow_iso(),
            "field_benchmark_seconds": FIELD_BENCHMARK_SECONDS,
            "first_response": first_response(totals, list(CATEGORIES), sla),
        }
