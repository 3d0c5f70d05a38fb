"""KPIs on /metrics, read from the shared counters in Redis at scrape time."""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from services.identity.bootstrap import OTP_CHANNELS

log = logging.getLogger("sb.identity.metrics")

# A verification takes from under a second (a device or a TOTP checked by a machine) to
# minutes (a code sent by SMS, a KBA read out on a call): buckets from 0.1 s to 10 min.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class KpiCollector:
    def __init__(self, service: Any) -> None:
        self.service = service

    def collect(self) -> Iterable[Metric]:
        try:
            stats = self.service.reporting.stats()
            durations = self.service.reporting.store.stats().durations
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail on Redis trouble
            log.warning("identity KPIs unavailable", extra={"error": type(exc).__name__})
            return
        # Counted since the counters began: a counter, so rate() gives requests per second.
        requests = CounterMetricFamily(
            "sb_identity_verification_requests",
            "Verification requests by how they were answered",
            labels=["outcome"],
        )
        for outcome, n in stats["requests"].items():
            requests.add_metric([outcome], n)
        yield requests
        rate = stats["repeat_verification_rate"]
        yield GaugeMetricFamily(
            "sb_identity_repeat_verification_ratio",
            "Share of requests asked again while a session was active (0..1)",
            value=rate if rate is not None else 0.0,
        )
        yield self._durations(durations)
        success = GaugeMetricFamily(
            "sb_identity_success_ratio",
            "Approved / finished verifications (0..1)",
            labels=["tier", "channel"],
        )
        completion = GaugeMetricFamily(
            "sb_identity_completion_ratio",
            "Approved / requested verifications, abandoned ones count against it (0..1)",
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

    def _durations(self, durations_ms: Iterable[float]) -> HistogramMetricFamily:
        """Start-to-approval durations as a histogram in seconds, from the durations the
        shared counters keep (the recent ones, shared by every worker and instance). A
        window, not a running total: read it with histogram_quantile() on the raw
        buckets, not on rate() (docs/kpis.md)."""
        kept = sorted(ms / 1000 for ms in durations_ms)
        buckets = [(str(le), bisect_right(kept, le)) for le in DURATION_BUCKETS]
        return HistogramMetricFamily(
            "sb_identity_verification_duration_seconds",
            "Start-to-approval duration of recent verifications",
            buckets=[*buckets, ("+Inf", len(kept))],
            sum_value=sum(kept),
        )

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
