"""KPIs on /metrics, read from the shared counters in Redis at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from services.identity.bootstrap import OTP_CHANNELS

log = logging.getLogger("sb.identity.metrics")


class KpiCollector:
    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            stats = self.service.reporting.stats()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on Redis trouble
            log.warning("identity KPIs unavailable", extra={"error": type(exc).__name__})
            return
        requests = GaugeMetricFamily(
            "sb_identity_verification_requests",
            "Verification requests by how they were answered",
            labels=["outcome"],
        )
        for outcome, n in stats["requests"].items():
            requests.add_metric([outcome], n)
        yield requests
        rate = stats["repeat_verification_rate"]
        yield GaugeMetricFamily(
            "sb_identity_repeat_verification_rate",
            "Share of requests asked again while a session was active",
            value=rate if rate is not None else 0.0,
        )
        duration = GaugeMetricFamily(
            "sb_identity_verification_duration_ms",
            "Start-to-approval duration of recent verifications",
            labels=["quantile"],
        )
        for q in ("p50", "p95"):
            value = stats["duration_ms"][q]
            duration.add_metric([q], value if value is not None else 0.0)
        yield duration
        success = GaugeMetricFamily(
            "sb_identity_success_rate",
            "Approved / finished verifications",
            labels=["tier", "channel"],
        )
        completion = GaugeMetricFamily(
            "sb_identity_completion_rate",
            "Approved / requested verifications (abandoned ones count against it)",
            labels=["tier", "channel"],
        )
        for row in stats["by_tier_channel"]:
            if row["success_rate"] is not None:
                success.add_metric([row["tier"], row["channel"]], row["success_rate"])
            if row["completion_rate"] is not None:
                completion.add_metric([row["tier"], row["channel"]], row["completion_rate"])
        yield success
        yield completion
        yield from self._breakers()

    def _breakers(self) -> Iterable[GaugeMetricFamily]:
        """1 while a provider's circuit breaker refuses sends: the alert for a gateway down."""
        family = GaugeMetricFamily(
            "sb_identity_delivery_breaker_open",
            "1 while a delivery provider's circuit breaker refuses sends",
            labels=["provider", "channel"],
        )
        try:
            for channel in OTP_CHANNELS:
                provider = self.service.delivery(channel)
                breaker = getattr(provider, "breaker", None)
                if breaker is not None:
                    family.add_metric([provider.name, channel], float(breaker.is_open()))
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on Redis trouble
            log.warning("delivery breakers unavailable", extra={"error": type(exc).__name__})
            return
        yield family
