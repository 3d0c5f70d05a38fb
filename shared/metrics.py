"""Prometheus metrics: HTTP requests and latency per endpoint, stream consumer lag.

Each app owns a registry (tests build many apps in one process). Under
gunicorn, set PROMETHEUS_MULTIPROC_DIR and /metrics aggregates all workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from shared.events import STREAMS, dead_stream
from shared.lua import script

log = logging.getLogger("sb.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


# The lag of a group, counted. XINFO GROUPS has no ``lag`` before Redis 7, none past a
# deleted entry, and on Redis 7.0 a wrong one for good once a group has fallen behind the
# stream's start (the entries trimmed away unread stay counted after it caught up), so
# Redis's number is used only where it agrees with what this script knows.
_LAG = script("stream_lag")
LAG_COUNT_LIMIT = 10_000


class StreamCollector:
    """Consumer-group lag, pending and dead-lettered entries, read from Redis at scrape."""

    def __init__(
        self, redis: Any, streams: Sequence[str], lag_count_limit: int = LAG_COUNT_LIMIT
    ) -> None:
        self.redis = redis
        self.streams = list(streams)
        self.lag_count_limit = lag_count_limit
        self._count_lag = redis.register_script(_LAG)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "sb_stream_consumer_lag",
            "Entries not yet delivered to the group",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "sb_stream_consumer_pending",
            "Entries delivered, not acknowledged",
            labels=["stream", "group"],
        )
        length = GaugeMetricFamily("sb_stream_length", "Entries in the stream", labels=["stream"])
        dead = GaugeMetricFamily(
            "sb_stream_dead_letters", "Dead-lettered entries", labels=["stream"]
        )
        for stream in self.streams:
            # Each stream on its own: one that cannot be read (a cluster node down, a key
            # of the wrong type) leaves the others' figures on the scrape.
            try:
                samples = self._read(stream)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail on Redis trouble
                log.warning(
                    "stream metrics unavailable", extra={"stream": stream, "error": str(exc)}
                )
                continue
            length.add_metric([stream], samples["length"])
            dead.add_metric([stream], samples["dead"])
            for name, (group_pending, group_lag) in samples["groups"].items():
                pending.add_metric([stream, name], group_pending)
                lag.add_metric([stream, name], group_lag)
        yield from (lag, pending, length, dead)

    def _read(self, stream: str) -> dict[str, Any]:
        """Everything of one stream, read before any of it is reported."""
        out: dict[str, Any] = {
            "length": self.redis.xlen(stream),
            "dead": self.redis.xlen(dead_stream(stream)),
            "groups": {},
        }
        try:
            groups = self.redis.xinfo_groups(stream)
        except Exception:  # noqa: BLE001 - stream not created yet
            groups = []
        for group in groups:
            out["groups"][group["name"]] = (group.get("pending", 0), self._lag(stream, group))
        return out

    def _lag(self, stream: str, group: dict[str, Any]) -> int:
        last = group.get("last-delivered-id") or "0-0"
        counted, lowest, highest = (
            int(n) for n in self._count_lag(keys=[stream], args=[last, self.lag_count_limit])
        )
        reported = group.get("lag")  # Redis >= 7, exact for a stream that lost nothing
        if reported is not None and lowest <= int(reported) <= highest:
            return int(reported)
        return counted


class ReadinessCollector:
    """``/readyz``'s checks as ``sb_readiness_check_up{check}`` (1 answers, 0 does not), so
    the alert for a service that is up but not ready needs no prober beside Prometheus."""

    def __init__(self, checks: Callable[[], Mapping[str, Callable[[], Any]]]) -> None:
        self.checks = checks

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sb_readiness_check_up",
            "1 while the readiness check answers, 0 while /readyz reports it unavailable",
            labels=["check"],
        )
        for name, check in self.checks().items():
            try:
                check()
                family.add_metric([name], 1.0)
            except Exception:  # noqa: BLE001 - any failure means not ready
                family.add_metric([name], 0.0)
        yield family


class Metrics:
    def __init__(self, service: str, redis: Any = None) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.requests = Counter(
            "sb_http_requests",
            "HTTP requests",
            ["service", "method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sb_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.consumer_events = Counter(
            "sb_consumer_events",
            "Stream entries handled by consumers",
            ["group", "event_type", "outcome"],
            registry=self.registry,
        )
        self.read_cache = Counter(
            "sb_read_cache",
            "Reads through a tracked read cache (hit, miss) and its resets",
            ["service", "result"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.stream_collector = StreamCollector(redis, list(STREAMS.values())) if redis else None
        if self.stream_collector is not None:
            self.registry.register(self.stream_collector)

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency. The labelled children are kept:
        prometheus-client validates and looks up labels on every ``labels()`` call."""
        key = (method, endpoint, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(self.service, method, endpoint, str(status)),
                self.latency.labels(self.service, method, endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def read_cache_observer(self) -> Callable[[int, int, int], None]:
        """What a ``TrackedCache`` reports its (hits, misses, resets) to."""
        hit, miss, reset = (
            self.read_cache.labels(self.service, r) for r in ("hit", "miss", "reset")
        )

        def observe(hits: int, misses: int, resets: int) -> None:
            if hits:
                hit.inc(hits)
            if misses:
                miss.inc(misses)
            if resets:
                reset.inc(resets)

        return observe

    def watch_readiness(self, checks: Callable[[], Mapping[str, Callable[[], Any]]]) -> None:
        """Report ``checks`` (read at each scrape) on /metrics."""
        self.registry.register(ReadinessCollector(checks))

    def render(self) -> bytes:
        if not self.multiproc_dir:
            return generate_latest(self.registry)
        # Counters and histograms come summed over every worker from the
        # multiprocess files; collectors that read shared state (Redis) at
        # scrape time - ours and the services' own - are rendered as they are.
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiproc_dir)
        live = CollectorRegistry(auto_describe=True)
        for collector in self._live_collectors():
            live.register(collector)
        return generate_latest(merged) + generate_latest(live)

    def _live_collectors(self) -> list[Any]:
        collectors = list(self.registry._collector_to_names)  # no public listing exists
        return [c for c in collectors if not isinstance(c, MetricWrapperBase)]


# A consumer process's own metrics (its Consumers count their outcomes here), served by
# ``serve_process_metrics``; None in a web process, whose consumers pass ``metrics=``.
_process_metrics: Metrics | None = None


def process_metrics() -> Metrics | None:
    return _process_metrics


def serve_process_metrics(service: str, port: int, addr: str = "0.0.0.0") -> Metrics:  # noqa: S104
    """Serve this process's metrics on ``port`` (``/metrics`` on a thread of its own) and
    make them the default of every ``Consumer`` created afterwards."""
    global _process_metrics
    metrics = Metrics(service)
    start_http_server(port, addr=addr, registry=metrics.registry)
    _process_metrics = metrics
    return metrics
