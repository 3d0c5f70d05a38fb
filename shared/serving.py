"""How gunicorn serves each web service: one table for `make run`, docker-compose,
the tests and the benchmarks, so what is measured is what ships.

- **identity: sync workers, 2 x cores + 1.** Its hot paths (introspection and
  verification status for IVRs, verification steps) are short and CPU-bound. A
  sync worker takes one connection at a time from the shared listen queue, so
  requests wait in one first-come queue for whichever worker frees up first. With
  gthread workers, keep-alive connections stay with the worker that accepted them
  (24 of 32 landed on one of two in a measurement), and a worker's threads
  contend for one GIL: introspect's p99 at 32 connections was 28-48 ms under
  gthread 2 x 4 against 13-21 ms under sync 5 x 1, on the same 2 cores, at the same
  throughput (docs/performance.md). The price: no HTTP keep-alive (a connection per
  request), and a request waiting on a slow delivery gateway holds a whole worker
  (at most about 16 s: 3 tries of 5 s), so size ``--workers`` for the gateways'
  worst case or put a buffering proxy in front against slow clients. First come is
  not shortest first: in the mixed journey (bench/journey.py), where enrollments
  and KBA checks cost tens of ms of CPU each, a status request waits for a worker
  to free up - p50 67-116 ms against 39 ms under gthread (p99 169-214 against
  190 ms, server-side time about 5 ms either way). Where IVR traffic must not wait
  behind enrollments, route it to replicas of its own.
- **crm, routing: gthread, 2 workers x 4 threads.** Routing long-polls agents'
  offers, which would hold a sync worker for the whole wait; the CRM's export and
  erasure may run long, and its resolve is bound by the database round trip,
  where threads overlap the waits.
- **Keep-alive 75 s on gthread** (gunicorn's default is 2 s). A client that reuses a
  connection the server is closing at that moment gets no response at all
  ("Server disconnected"), and a POST cannot be retried blindly. At 2 s that race
  hit 9-11 of 260 journeys in a minute of bench/journey.py on a slow machine
  (httpx keeps idle connections 5 s), and none at 75 s. The server must keep a
  connection longer than the clients and proxies in front of it do (nginx's
  upstream keepalive_timeout 60 s, a cloud load balancer's idle timeout 60 s).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["KEEP_ALIVE_SECONDS", "Layout", "gunicorn_args", "layout"]

KEEP_ALIVE_SECONDS = 75


@dataclass(frozen=True)
class Layout:
    worker_class: str
    workers: int
    threads: int

    def args(self) -> list[str]:
        out = ["--worker-class", self.worker_class, "--workers", str(self.workers)]
        if self.worker_class == "gthread":  # sync workers close after each response
            out += ["--threads", str(self.threads), "--keep-alive", str(KEEP_ALIVE_SECONDS)]
        return out


def _sync_workers(cpus: int | None) -> int:
    # gunicorn's own guidance for sync workers, capped so a big laptop does not start
    # dozens of processes for `make run`.
    return min(2 * (cpus or 1) + 1, 9)


def layout(service: str, workers: int | None = None, cpus: int | None = None) -> Layout:
    """The layout ``service`` ships with; ``workers`` overrides the process count."""
    if service == "identity":
        return Layout("sync", workers or _sync_workers(cpus or os.cpu_count()), 1)
    return Layout("gthread", workers or 2, 4)


def gunicorn_args(service: str, workers: int | None = None) -> list[str]:
    return layout(service, workers).args()
