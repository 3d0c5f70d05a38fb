"""How gunicorn serves each web service: one table for `make run`, docker-compose,
the tests and the benchmarks, so what is measured is what ships.

- **gevent workers for all three services.** A worker must not be held by a client
  that sends its request slowly: 20 connections trickling one header byte a second
  took identity (then sync workers, one connection each) down for every IVR status
  poll. gunicorn's gthread worker is no better: it hands a new connection to a
  thread as soon as the first byte arrives (after waiting up to 5 s for it in that
  thread), and the thread then blocks reading the rest; 200 trickling connections
  starved the CRM and routing (2 x 4 threads) the same way. A gevent worker parks
  each connection in a greenlet until its request is complete, so 200 trickling
  connections cost 200 idle greenlets (``--worker-connections``, 1000 per worker)
  and verification-status keeps answering (docs/performance.md). gevent is
  monkey-patched by the worker before the app is imported, so redis-py (hiredis
  parses, the socket is gevent's), psycopg 3 (it detects the patching and waits in
  gevent's select), ``threading`` (the read cache's listener, the idempotency lease
  renewer: greenlets then) and the prometheus multiprocess files all cooperate.
- **identity: 2 x cores + 1 workers.** Its hot paths are short and CPU-bound, and a
  greenlet computing (a KBA hash, an enrollment) holds its whole worker: with more
  workers than cores, one busy worker leaves others to accept. A sync worker queued
  requests first come first served across processes; a gevent worker accepts what
  it can and interleaves them, so under a saturating closed load the tail is longer
  (docs/performance.md). Where IVR traffic must not wait behind enrollments, route
  it to replicas of its own.
- **crm, routing: 2 workers.** Routing long-polls agents' offers (a greenlet each,
  blocked on XREAD); the CRM's resolve waits on the database, which greenlets
  overlap.
- **Keep-alive 75 s** (gunicorn's default is 2 s). A client that reuses a connection
  the server is closing at that moment gets no response at all ("Server
  disconnected"), and a POST cannot be retried blindly. At 2 s that race hit 9-11 of
  260 journeys in a minute of bench/journey.py on a slow machine (httpx keeps idle
  connections 5 s), and none at 75 s. The server must keep a connection longer than
  the clients and proxies in front of it do (nginx's upstream keepalive_timeout
  60 s, a cloud load balancer's idle timeout 60 s). Under gevent the same figure
  bounds how long a client may take to send a request's headers; nothing here bounds
  a slow body, which is why production puts a buffering proxy with header and body
  timeouts in front (deploy/nginx/nginx.conf).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["KEEP_ALIVE_SECONDS", "LOGGER_CLASS", "Layout", "gunicorn_args", "layout"]

KEEP_ALIVE_SECONDS = 75
# gunicorn's own lines as JSON, like every other line of the product (shared/gunicorn_logging.py).
LOGGER_CLASS = "shared.gunicorn_logging.JsonLogger"


@dataclass(frozen=True)
class Layout:
    worker_class: str
    workers: int
    threads: int

    def args(self) -> list[str]:
        out = ["--worker-class", self.worker_class, "--workers", str(self.workers)]
        if self.worker_class == "gthread":
            out += ["--threads", str(self.threads)]
        if self.worker_class != "sync":  # sync workers close after each response
            out += ["--keep-alive", str(KEEP_ALIVE_SECONDS)]
        return [*out, "--logger-class", LOGGER_CLASS]


def _cpu_bound_workers(cpus: int | None) -> int:
    # gunicorn's own guidance (2 x cores + 1), capped so a big laptop does not start
    # dozens of processes for `make run`.
    return min(2 * (cpus or 1) + 1, 9)


def layout(service: str, workers: int | None = None, cpus: int | None = None) -> Layout:
    """The layout ``service`` ships with; ``workers`` overrides the process count."""
    if service == "identity":
        return Layout("gevent", workers or _cpu_bound_workers(cpus or os.cpu_count()), 1)
    return Layout("gevent", workers or 2, 1)


def gunicorn_args(service: str, workers: int | None = None) -> list[str]:
    return layout(service, workers).args()
