"""The body of ``python -m services.<name>.consumer``: run until SIGTERM/SIGINT.

``build(settings, redis)`` returns the runnables of the process: each is a
callable taking the stop event and looping until it is set (a ``Consumer``'s
``run``, an outbox relay, ...). Each runs in its own thread; on a signal the
stop event is set and every runnable finishes what it has in hand.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from shared.bus import trim_loop
from shared.config import Settings
from shared.events import STREAMS
from shared.logs import configure_logging
from shared.redis_conn import connect

log = logging.getLogger("sb.consumer")

Runnable = Callable[[threading.Event], None]
Build = Callable[[Settings, Any], Sequence[Runnable]]


def consumer_name(service: str) -> str:
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


def run(service: str, build: Build, settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env(service=service)
    configure_logging(f"{service}-consumer", settings.log_level)
    redis = connect(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runnables = list(build(settings, redis))
    if service in STREAMS:  # each service keeps its own stream short
        runnables.append(trim_loop(redis, [STREAMS[service]]))
    threads = [
        threading.Thread(target=_guard, args=(r, stop), name=f"{service}-{i}", daemon=True)
        for i, r in enumerate(runnables)
    ]
    for thread in threads:
        thread.start()
    log.info("consumer started", extra={"runnables": len(threads)})
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=30)
    log.info("consumer stopped")


def _guard(runnable: Runnable, stop: threading.Event) -> None:
    """Keep a runnable alive through unexpected errors; stop the process on none."""
    while not stop.is_set():
        try:
            runnable(stop)
            return
        except Exception:  # noqa: BLE001 - log, back off, go on
            log.exception("runnable failed; restarting in 1 s")
            stop.wait(1.0)
