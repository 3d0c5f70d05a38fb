"""The identity service's app factory: `gunicorn 'services.identity.app:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="identity")
    from services.identity.adapters.delivery import DevDelivery
    from services.identity.api import blp, wk
    from services.identity.api_delivery import delivery_blp
    from services.identity.bootstrap import build_service
    from services.identity.delivery_metrics import DeliveryCollector
    from services.identity.metrics import KpiCollector

    redis = overrides.pop("redis", None) or connect(settings)
    app = build_app(
        settings,
        title="Switchboard Identity",
        blueprints=[blp, wk, delivery_blp],
        redis=redis,
        **overrides,
    )
    sb = app.extensions["sb"]
    service = build_service(
        settings, sb.redis, sb.publisher, read_cache_observer=sb.metrics.read_cache_observer()
    )
    sb.extras["identity"] = service
    dev = next(
        (p for p in map(service.delivery, ("sms", "email", "voice")) if isinstance(p, DevDelivery)),
        None,
    )
    if settings.dev_mode and dev is not None:
        sb.extras["identity_dev_outbox"] = dev
    # KPIs are read from Redis at scrape time, so every worker reports the same figures.
    sb.metrics.registry.register(KpiCollector(service))
    if service.guard is not None:
        sb.metrics.registry.register(DeliveryCollector(service.guard))
    return app
