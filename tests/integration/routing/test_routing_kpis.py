"""First response per category, folded from assignment events on a real Redis."""

from __future__ import annotations

import time
from typing import Any

from services.routing.adapters.redis import kpis
from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.service import RoutingService
from shared.bus import Consumer
from shared.events import STREAMS

from .conftest import Clock

AGENT = {"skills": {"billing": 4}, "languages": ["zh"], "channels": {"chat": 2}}


def answered_after(service: RoutingService, clock: Clock, category: str, seconds: float) -> None:
    view = service.create_task(
        {
            "channel": "chat",
            "customer_id": "c-1",
            "category": category,
            "skills": {"billing": 3},
            "language": "zh",
        }
    )
    clock.advance(seconds)
    service.accept(view["reservation_id"])
    service.complete_task(view["task_id"])


def test_stats_report_first_response_per_category_within_sla(redis: Any) -> None:
    clock = Clock(start=int(time.time() * 1000) - 1_800_000)  # events half an hour ago
    config = RoutingConfig(reservation_timeout_s=300)  # offers outlive the 90 s answer
    store = RedisRoutingStore(redis, config.pool)
    service = RoutingService(store, config, clock=clock)
    service.put_agent("a1", {"name": "a1", **AGENT, "status": "available"})
    answered_after(service, clock, "basic", 3)
    answered_after(service, clock, "basic", 90)  # past the 60 s target for basic
    answered_after(service, clock, "urgent", 20)
    store.relay(STREAMS["routing"], maxlen=10_000)
    sla = config.priority.sla_seconds
    consumer = Consumer(redis, [STREAMS["routing"]], kpis.GROUP, "t", kpis.handlers(redis, sla))
    while consumer.run_once(block_ms=10):
        pass
    for _, fields in redis.xrange(STREAMS["routing"]):  # every event delivered twice
        redis.xadd(STREAMS["routing"], fields)
    while consumer.run_once(block_ms=10):
        pass

    report = service.kpi_stats(3600)
    rows = {row["category"]: row for row in report["first_response"]}
    assert rows["basic"]["answered"] == 2 and rows["basic"]["average_seconds"] == 46.5
    assert rows["basic"]["within_sla"] == 0.5 and rows["basic"]["sla_target_seconds"] == 60
    assert rows["urgent"]["answered"] == 1 and rows["urgent"]["within_field_benchmark"] == 1.0
    assert rows["complex"]["answered"] == 0
    # A 5-minute window (rounded out to whole 5-minute buckets) ends well after them.
    assert service.kpi_stats(300)["first_response"][0]["answered"] == 0


def test_the_stats_endpoint_answers_with_its_schema(make_settings: Any, headers: Any) -> None:
    from services.routing.app import create_app

    client = create_app(make_settings("routing")).test_client()
    response = client.get("/v1/stats?window_seconds=3600", headers=headers("admin"))
    assert response.status_code == 200
    assert [row["category"] for row in response.json["first_response"]] == [
        "basic",
        "complex",
        "urgent",
    ]
    assert client.get("/v1/stats", headers=headers("channel")).status_code == 403
