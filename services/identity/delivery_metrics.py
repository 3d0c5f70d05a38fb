"""The delivery fraud guard on /metrics, read from Redis at scrape time (every worker
reports the same figures)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from services.identity.domain.delivery_policy import REFUSAL_REASONS

log = logging.getLogger("sb.identity.metrics")


class DeliveryCollector:
    def __init__(self, guard: Any) -> None:
        self.guard = guard

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        try:
            stats = self.guard.stats()
            blocked = len(self.guard.blocks())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on Redis trouble
            log.warning("delivery guard figures unavailable", extra={"error": type(exc).__name__})
            return
        refusals = CounterMetricFamily(
            "sb_identity_delivery_refusals",
            "Code sends the delivery fraud guard refused, by reason",
            labels=["reason"],
        )
        for reason in REFUSAL_REASONS:
            refusals.add_metric([reason], stats.refused.get(reason, 0))
        yield refusals
        yield CounterMetricFamily(
            "sb_identity_delivery_prefix_auto_blocks",
            "Prefixes blocked automatically for sends that were not verified",
            value=stats.auto_blocks,
        )
        yield GaugeMetricFamily(
            "sb_identity_delivery_prefixes_blocked",
            "Prefixes blocked now",
            value=blocked,
        )
