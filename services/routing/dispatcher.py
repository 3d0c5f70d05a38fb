"""The routing dispatcher: `python -m services.routing.dispatcher`.

Two loops, each safe with several dispatchers running:

- timers: fires due deadlines (reservation timeouts, SLA breaches, the
  team-lead escalation, sticky and relaxation steps) - each is claimed and
  acted on inside one Lua script, so it fires exactly once - then matches
  what they released; every couple of seconds it also sweeps every queue:
  its head (a router may have died between queuing a task and matching it)
  and the next window of the rest, from a cursor shared by all dispatchers.
- relay: moves the pool's outbox to ``sb:events:routing``, under a lease so
  one relay at a time keeps the event order.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from services.routing.bootstrap import build as build_wiring
from services.routing.ports import EventRelay
from services.routing.service import RoutingService
from shared import liveness
from shared.config import Settings
from shared.consumer_main import Runnable, run
from shared.events import STREAMS

log = logging.getLogger("sb.routing.dispatcher")

TICK_SECONDS = 0.05
SWEEP_SECONDS = 2.0
LEASE_MS = 5000


def timer_loop(service: RoutingService, stop: threading.Event) -> None:
    next_sweep = 0.0
    while not stop.is_set():
        liveness.stamp(TICK_SECONDS)  # a pass begins: the last one ended
        fired = service.tick()
        if time.monotonic() >= next_sweep:
            service.sweep()
            next_sweep = time.monotonic() + SWEEP_SECONDS
        if not fired:
            stop.wait(TICK_SECONDS)


def relay_loop(
    store: EventRelay, maxlen: int, stop: threading.Event, holder: str | None = None
) -> None:
    me = holder or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
    while not stop.is_set():
        liveness.stamp(1.0)  # the longest wait of a pass: the one without the lease
        if store.acquire_lease("relay", me, LEASE_MS):
            store.relay(STREAMS["routing"], maxlen, block_ms=500)
        else:
            stop.wait(1.0)


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    wiring = build_wiring(settings, redis)
    service = wiring.service
    wiring.agents.reindex_agents(service.now())  # fills indexes added since agents were filed
    return [  # partials, not lambdas: the thread is named after the loop
        functools.partial(timer_loop, service),
        functools.partial(relay_loop, wiring.relay, settings.stream_maxlen),
    ]


if __name__ == "__main__":
    run("routing", build, process="routing-dispatcher")
