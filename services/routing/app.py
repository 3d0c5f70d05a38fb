"""The routing service's app factory: `gunicorn 'services.routing.app:create_app()'`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from prometheus_client.core import GaugeMetricFamily

from services.routing.domain.model import InvalidRequest, InvalidTransition, NotFound
from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect

ERRORS: dict[type[BaseException], tuple[int, str]] = {
    NotFound: (404, "Not Found"),
    InvalidTransition: (409, "Conflict"),
    InvalidRequest: (400, "Bad Request"),
}


class RoutingCollector:
    """Queue and agent statistics on /metrics, computed from the same counters at scrape."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["category", "channel"]
        waiting = GaugeMetricFamily("sb_routing_waiting_tasks", "Tasks waiting", labels=labels)
        longest = GaugeMetricFamily(
            "sb_routing_longest_wait_seconds", "Longest current wait", labels=labels
        )
        level = GaugeMetricFamily(
            "sb_routing_service_level", "Answered within SLA, last hour", labels=labels
        )
        asa = GaugeMetricFamily(
            "sb_routing_average_speed_of_answer_seconds", "ASA, last hour", labels=labels
        )
        available = GaugeMetricFamily(
            "sb_routing_agents_available", "Available agents with free capacity", labels=["channel"]
        )
        agents = GaugeMetricFamily("sb_routing_agents", "Agents per status", labels=["status"])
        busy = GaugeMetricFamily(
            "sb_routing_busy_slots", "Offers and tasks in hand per channel", labels=["channel"]
        )
        try:
            totals = self.service.agent_totals()
            for status, n in totals["by_status"].items():
                agents.add_metric([status], n)
            for channel, n in totals["busy_slots"].items():
                busy.add_metric([channel], n)
            seen: set[str] = set()
            for row in self.service.queue_stats()["items"]:
                key = [row["category"], row["channel"]]
                waiting.add_metric(key, row["waiting"])
                longest.add_metric(key, row["longest_wait_seconds"])
                if row["service_level"] is not None:
                    level.add_metric(key, row["service_level"])
                    asa.add_metric(key, row["average_speed_of_answer_seconds"])
                if row["channel"] not in seen:
                    seen.add(row["channel"])
                    available.add_metric([row["channel"]], row["agents_available"])
        except Exception:  # noqa: BLE001 - a scrape must not fail on Redis trouble
            pass
        yield from (waiting, longest, level, asa, available, agents, busy)


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="routing")
    from services.routing.api import blp
    from services.routing.bootstrap import build_service

    redis = overrides.pop("redis", None) or connect(settings)
    routing = build_service(settings, redis)
    extensions = {"routing": routing, **overrides.pop("extensions", {})}
    app = build_app(
        settings,
        title="Switchboard Routing",
        blueprints=[blp],
        error_map=ERRORS,
        extensions=extensions,
        redis=redis,
        **overrides,
    )
    app.extensions["sb"].metrics.registry.register(RoutingCollector(routing))
    return app
