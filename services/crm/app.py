"""The crm service's app factory: `gunicorn 'services.crm.app:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect
from shared.webhooks import api as webhooks_api


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="crm")
    from services.crm import bootstrap
    from services.crm.api import blp

    redis = overrides.pop("redis", None) or connect(settings)
    wiring = bootstrap.build(settings, redis)
    extensions = {
        "crm": wiring.service,
        "engine": wiring.engine,
        "store": wiring.store,
        **overrides.pop("extensions", {}),
    }
    return build_app(
        settings,
        title="Switchboard CRM",
        description="Unified customer profiles, identity resolution, timeline and cases",
        blueprints=[blp, webhooks_api.blueprint("crm")],
        readiness={"database": wiring.store.ping},
        extensions=extensions,
        redis=redis,
        **overrides,
    )
