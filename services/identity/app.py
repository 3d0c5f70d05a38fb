"""The identity service's app factory: `gunicorn 'services.identity.app:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect
from shared.webhooks import api as webhooks_api


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="identity")
    from services.identity.api import blp, wk
    from services.identity.api_delivery import delivery_blp
    from services.identity.bootstrap import build
    from services.identity.delivery_metrics import DeliveryCollector
    from services.identity.metrics import KpiCollector

    redis = overrides.pop("redis", None) or connect(settings)
    app = build_app(
        settings,
        title="Switchboard Identity",
        blueprints=[blp, wk, delivery_blp, webhooks_api.blueprint("identity")],
        redis=redis,
        **overrides,
    )
    sb = app.extensions["sb"]
    wiring = build(
        settings, sb.redis, sb.publisher, read_cache_observer=sb.metrics.read_cache_observer()
    )
    sb.extras["identity"] = wiring
    # KPIs are read from Redis at scrape time, so every worker reports the same figures.
    sb.metrics.registry.register(KpiCollector(wiring))
    if wiring.guard is not None:
        sb.metrics.registry.register(DeliveryCollector(wiring.guard))
    return app
