"""The routing service's app factory: `gunicorn 'services.routing.app:create_app()'`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client.core import GaugeMetricFamily

from services.routing.domain.model import (
    AgentBinding,
    InvalidRequest,
    InvalidTransition,
    NotFound,
)
from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect

ERRORS: dict[type[BaseException], tuple[int, str]] = {
    NotFound: (404, "Not Found"),
    InvalidTransition: (409, "Conflict"),
    InvalidRequest: (400, "Bad Request"),
    AgentBinding: (403, "Forbidden"),
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
        capacity = GaugeMetricFamily(
            "sb_routing_capacity_slots",
            "Capacity of the agents not offline per channel",
            labels=["channel"],
        )
        occupancy = GaugeMetricFamily(
            "sb_routing_occupancy",
            "Busy slots / capacity of the agents not offline (0..1), per channel",
            labels=["channel"],
        )
        try:
            totals = self.service.agent_totals()
            for status, n in totals["by_status"].items():
                agents.add_metric([status], n)
            for channel, n in totals["busy_slots"].items():
                busy.add_metric([channel], n)
            for channel, n in totals["capacity_slots"].items():
                capacity.add_metric([channel], n)
            for channel, share in totals["occupancy"].items():
                occupancy.add_metric([channel], share)
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
        yield from (waiting, longest, level, asa, available, agents, busy, capacity, occupancy)


def gunicorn_threads(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    """The ``--threads`` of the gunicorn running this process (1 when not given);
    0 when not under gunicorn."""
    argv = list(sys.argv if argv is None else argv)
    env = dict(os.environ if env is None else env)
    # The gunicorn script, or `python -m gunicorn` (.../gunicorn/__main__.py).
    if not argv or not any(p.startswith("gunicorn") for p in Path(argv[0]).parts[-2:]):
        return 0
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    args, _ = parser.parse_known_args(shlex.split(env.get("GUNICORN_CMD_ARGS", "")) + argv[1:])
    return max(1, args.threads)


def long_poll_slots(configured: int | None, threads: int) -> int:
    """Concurrent long-polls per process: the configured number, else half the gunicorn
    worker's threads (a sync worker's single thread: none), else 4 outside gunicorn."""
    if configured is not None:
        return configured
    return threads // 2 if threads else 4


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="routing")
    from services.routing.api import blp
    from services.routing.bootstrap import build_service

    redis = overrides.pop("redis", None) or connect(settings)
    routing = build_service(settings, redis)
    slots = long_poll_slots(routing.config.long_poll_slots, gunicorn_threads())
    extensions = {
        "routing": routing,
        "long_polls": threading.BoundedSemaphore(slots),
        **overrides.pop("extensions", {}),
    }
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
