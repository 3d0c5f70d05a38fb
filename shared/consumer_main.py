"""The body of ``python -m services.<name>.consumer``: run until SIGTERM/SIGINT.

``build(settings, redis)`` returns the runnables of the process: each is a
callable taking the stop event and looping until it is set (a ``Consumer``'s
``run``, an outbox relay, ...), calling ``shared.liveness.stamp`` once per pass.
Each runs in its own thread; on a signal the stop event is set and every
runnable finishes what it has in hand. Every process also runs the Redis part of
the compaction after erasures (``shared.compaction``: one process claims each run).

Liveness: every ``SB_HEARTBEAT_SECONDS`` (5) seconds, while every runnable's thread is
alive and has stamped its progress lately (``shared.liveness``: within
``SB_PROGRESS_MAX_AGE``, 60 s, or three of its own waits if longer) and Redis
answers a ``PING``, the process writes the time to ``SB_HEARTBEAT_FILE``
(default ``<SB_VAR_DIR>/run/<process>.alive``, e.g. ``var/run/crm-consumer.alive``).
The container's healthcheck, ``python -m shared.consumer_main healthy`` (the file
from ``SB_HEARTBEAT_FILE``, set in docker-compose.yml, or ``--process NAME``), fails
when that file is older than ``--max-age`` seconds (default 30): a consumer that
died, hangs (even with its thread alive) or lost Redis is reported unhealthy
instead of silently leaving its stream to grow, and the log names the runnable
that stopped progressing. The file is the process's own, under its own state
directory: it was once ``/tmp/sb-consumer-alive`` for every process on the
machine, and two `make run` stacks' consumers renamed it from under each other
(``FileNotFoundError``), taking a stack down.

Metrics: with ``SB_METRICS_PORT`` set, the process serves ``/metrics`` on that
port, with ``sb_consumer_events_total`` (group, event type, outcome) of its
consumers. The streams' lag, pending and dead letters are on every web
service's ``/metrics`` already (read from Redis).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared import compaction
from shared.config import Settings
from shared.events import STREAMS
from shared.liveness import MAX_AGE as PROGRESS_MAX_AGE
from shared.liveness import Progress
from shared.logs import configure_logging
from shared.metrics import serve_process_metrics
from shared.redis_conn import connect
from shared.stream_trim import trim_loop

log = logging.getLogger("sb.consumer")

HEARTBEAT_EVERY = 5.0
MAX_AGE = 30.0

Runnable = Callable[[threading.Event], None]
Build = Callable[[Settings, Any], Sequence[Runnable]]


def consumer_name(service: str) -> str:
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


def heartbeat_file(var_dir: Path, process: str) -> Path:
    return var_dir / "run" / f"{process}.alive"


def run(
    service: str, build: Build, settings: Settings | None = None, *, process: str | None = None
) -> None:
    """``process``: what this process is called in its heartbeat file's name (default
    ``<service>-consumer``); two processes of one state directory need two names."""
    settings = settings or Settings.from_env(service=service)
    process = process or f"{service}-consumer"
    configure_logging(f"{service}-consumer", settings.log_level)
    redis = connect(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    port = settings.int_env("SB_METRICS_PORT", 0, minimum=0, maximum=65535)
    if port:  # before build: the Consumers it makes count into these metrics
        serve_process_metrics(f"{service}-consumer", port)
    runnables = list(build(settings, redis))
    if service in STREAMS:  # each service keeps its own stream short
        runnables.append(trim_loop(redis, [STREAMS[service]]))
    # Any replica may run the Redis files' compaction after an erasure; one does.
    runnables.append(compaction.redis_loop(redis, settings))
    supervise(
        service,
        runnables,
        redis,
        stop,
        heartbeat=Path(
            settings.str_env("SB_HEARTBEAT_FILE", str(heartbeat_file(settings.var_dir, process)))
        ),
        every=settings.float_env("SB_HEARTBEAT_SECONDS", HEARTBEAT_EVERY, minimum=0.1),
        progress=Progress(settings.float_env("SB_PROGRESS_MAX_AGE", PROGRESS_MAX_AGE, minimum=1.0)),
    )


def start(
    service: str, runnables: Sequence[Runnable], stop: threading.Event, progress: Progress
) -> list[threading.Thread]:
    """One thread per runnable, each attached to ``progress``."""
    threads = [
        threading.Thread(
            target=_guard,
            args=(r, stop, progress),
            name=f"{service}-{i}-{_label(r)}",
            daemon=True,
        )
        for i, r in enumerate(runnables)
    ]
    for thread in threads:
        thread.start()
    return threads


def supervise(
    service: str,
    runnables: Sequence[Runnable],
    redis: Any,
    stop: threading.Event,
    *,
    heartbeat: Path,
    every: float = HEARTBEAT_EVERY,
    progress: Progress | None = None,
    join_timeout: float = 30.0,
) -> None:
    """Run ``runnables`` until ``stop`` is set, beating while all of them progress."""
    if progress is None:
        progress = Progress()
    threads = start(service, runnables, stop, progress)
    log.info("consumer started", extra={"runnables": len(threads)})
    beaten = 0.0
    while not stop.wait(min(0.5, every)):
        if time.monotonic() - beaten < every:
            continue
        # Asked every time, so each hung runnable is logged as soon as it is overdue.
        if progress.hung() or not all(t.is_alive() for t in threads):
            continue
        try:
            redis.ping()
        except Exception as exc:  # noqa: BLE001 - no beat; the runnables retry themselves
            log.warning("no heartbeat: redis unavailable", extra={"error": type(exc).__name__})
            continue
        beat(heartbeat)
        beaten = time.monotonic()
    for thread in threads:
        thread.join(timeout=join_timeout)
    log.info("consumer stopped")


def _label(runnable: Runnable) -> str:
    """What a runnable's thread is called in the logs: which consumer group or loop."""
    group = getattr(getattr(runnable, "__self__", None), "group", None)
    if isinstance(group, str):
        return f"consumer:{group}"
    func = getattr(runnable, "func", runnable)  # a functools.partial: the loop it runs
    return str(getattr(func, "__name__", "runnable"))


def _guard(runnable: Runnable, stop: threading.Event, progress: Progress) -> None:
    """Keep a runnable alive through unexpected errors; stop the process on none."""
    progress.attach()
    while not stop.is_set():
        try:
            runnable(stop)
            if not stop.is_set():
                # Every runnable loops until the stop: one that returns is a bug, and the
                # heartbeat stops with its thread. Say which, so the restart is explained.
                log.error(
                    "runnable %s ended before the process was stopped; no heartbeat from now",
                    threading.current_thread().name,
                )
            return
        except Exception:  # noqa: BLE001 - log, back off, go on
            log.exception("runnable failed; restarting in 1 s")
            stop.wait(1.0)


def beat(path: Path) -> None:
    # Written whole, then renamed: the healthcheck never reads half a file. The partial
    # file is this process's own even if a misconfiguration gives two one heartbeat.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(f"{time.time():.3f}\n")
    partial.replace(path)


def healthy(path: Path, max_age: float, now: float | None = None) -> bool:
    try:
        beaten = float(path.read_text())
    except (OSError, ValueError):
        return False
    return (time.time() if now is None else now) - beaten <= max_age


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.consumer_main")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("healthy", help="exit 0 if this container's consumer beat lately")
    check.add_argument("--max-age", type=float, default=MAX_AGE)
    check.add_argument("--file", default=os.environ.get("SB_HEARTBEAT_FILE"))
    check.add_argument(
        "--process", help="e.g. crm-consumer: its file under SB_VAR_DIR, unless --file"
    )
    args = parser.parse_args(argv)
    if args.file:
        path = Path(args.file)
    elif args.process:
        path = heartbeat_file(Path(os.environ.get("SB_VAR_DIR", "var")).resolve(), args.process)
    else:
        parser.error("which heartbeat: set SB_HEARTBEAT_FILE, or give --file or --process")
    return 0 if healthy(path, args.max_age) else 1


if __name__ == "__main__":
    sys.exit(main())
