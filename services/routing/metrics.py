"""Routing's collectors on /metrics."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from services.routing.reporting import ReportingUseCases


class RoutingCollector:
    """Queue and agent statistics on /metrics, computed from the same counters at scrape."""

    def __init__(self, service: ReportingUseCases) -> None:
        self.service = service

    def collect(self) -> Iterable[GaugeMetricFamily]:
        labels = ["category", "channel"]
        waiting = GaugeMetricFamily("sb_routing_waiting_tasks", "Tasks waiting", labels=labels)
        longest = GaugeMetricFamily(
            "sb_routing_longest_wait_seconds", "Longest current wait", labels=labels
        )
        level = GaugeMetricFamily(
            "sb_routing_service_level_ratio", "Answered within SLA, last hour", labels=labels
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
            "sb_routing_occupancy_ratio",
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
