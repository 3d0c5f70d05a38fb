"""The routing service's app factory: `gunicorn 'services.routing.app:create_app()'`."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from shared.app import build_app
from shared.config import Settings
from shared.redis_conn import connect
from shared.webhooks import api as webhooks_api


def gunicorn_threads(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    """How many requests a worker of the gunicorn running this process serves at once:
    its ``--threads`` (1 when not given), a gevent worker's ``--worker-connections``;
    0 when not under gunicorn."""
    argv = list(sys.argv if argv is None else argv)
    env = dict(os.environ if env is None else env)
    # The gunicorn script, or `python -m gunicorn` (.../gunicorn/__main__.py).
    if not argv or not any(p.startswith("gunicorn") for p in Path(argv[0]).parts[-2:]):
        return 0
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-k", "--worker-class", default="sync")
    parser.add_argument("--worker-connections", type=int, default=1000)
    args, _ = parser.parse_known_args(shlex.split(env.get("GUNICORN_CMD_ARGS", "")) + argv[1:])
    if args.worker_class == "gevent":  # a long-poll is a greenlet there, not a thread
        return max(1, args.worker_connections)
    return max(1, args.threads)


def long_poll_slots(configured: int | None, threads: int) -> int:
    """Concurrent long-polls per process: the configured number, else half the gunicorn
    worker's threads (a sync worker's single thread: none), else 4 outside gunicorn."""
    if configured is not None:
        return configured
    return threads // 2 if threads else 4


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or Settings.from_env(service="routing")
    from services.routing.api import blp
    from services.routing.bootstrap import build
    from services.routing.metrics import RoutingCollector

    redis = overrides.pop("redis", None) or connect(settings)
    routing = build(settings, redis).service
    slots = long_poll_slots(routing.config.long_poll_slots, gunicorn_threads())
    extensions = {
        "routing": routing,
        "long_polls": threading.BoundedSemaphore(slots),
        **overrides.pop("extensions", {}),
    }
    app = build_app(
        settings,
        title="Switchboard Routing",
        blueprints=[blp, webhooks_api.blueprint("routing")],
        extensions=extensions,
        redis=redis,
        **overrides,
    )
    app.extensions["sb"].metrics.registry.register(RoutingCollector(routing.reporting))
    return app
