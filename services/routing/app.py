"""The routing service's app factory: `gunicorn 'services.routing.app:create_app()'`."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shared.app import build_app
from shared.config import Settings


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="routing")
    from services.routing.api import blp

    return build_app(settings, title="Switchboard Routing", blueprints=[blp], **overrides)
