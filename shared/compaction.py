"""Compaction after erasures: an erased customer's values leave the disk, not only memory.

Deleting a key removes it from Redis's memory, but its writes stay in the
append-only file (and in an RDB snapshot, if one is configured) until the next
rewrite; deleted SQL rows stay in SQLite's write-ahead log and in PostgreSQL's
dead tuples until a checkpoint or a vacuum. So whoever erases something asks
for a *compaction job* (``request``): ``redis`` (rewrite the AOF of every node,
re-save the RDB when snapshots are on) and ``crm-sql`` (see
``services/crm/adapters/sql_compaction.py``).

Coalescing: a request sets the job's ``requested`` time only if none is pending
(``SET NX``), so every erasure of the next ``SB_COMPACTION_SECONDS`` (60) rides
on the same run; the job runs once that long has passed since the first
request (Redis's clock, so no two processes' clocks are compared). A request
made while a run is under way is a new one: the running rewrite may have
started before that erasure's deletes. Hence one run per job at most every
``SB_COMPACTION_SECONDS``, and each erasure is compacted within that plus the
run's own time (kept below 5 minutes: the setting is capped at 240 s).

One run across replicas: ``loop`` runs in every consumer process; a claim
(Lua, atomic) renames the pending request to ``running`` and takes a lease. The
lease is renewed while the run waits for Redis; a run that fails, or whose
process dies, leaves ``running`` in place, and the next claim after the lease
runs it again, so an erasure's compaction is never lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis as redis_lib

from shared import liveness
from shared.config import ConfigError, Settings
from shared.lua import script

log = logging.getLogger("sb.compaction")

REDIS_JOB = "redis"
ENV = "SB_COMPACTION_SECONDS"
DEFAULT_SECONDS = 60.0
MAX_SECONDS = 240.0  # leaves a run a minute to finish inside the 5 minutes API.md promises
POLL_SECONDS = 1.0
LEASE_MS = 60_000
INFO_POLL_SECONDS = 0.2

Beat = Callable[[], None]
Job = Callable[[Beat], None]


def _key(job: str, part: str) -> str:
    # One hash tag: a job's keys share a slot, so the scripts below work on a cluster.
    return f"{{sb:compaction}}:{job}:{part}"


def done_key(job: str) -> str:
    """How many runs of ``job`` have completed (for operators and the tests)."""
    return _key(job, "done")


def window(settings: Settings) -> float:
    seconds = settings.float_env(ENV, DEFAULT_SECONDS, minimum=0.1)
    if seconds > MAX_SECONDS:
        raise ConfigError(
            f"{ENV} must be at most {MAX_SECONDS:.0f}: an erasure must reach the disk "
            "within 5 minutes"
        )
    return seconds


# The run's scripts: request, claim, renew the lease, finish (shared/lua/*.lua).
_REQUEST = script("compaction_request")
_CLAIM = script("compaction_claim")
_RENEW = script("compaction_renew")
_FINISH = script("compaction_finish")


def request(redis: Any, *jobs: str) -> None:
    """Ask for ``jobs`` to run (coalesced); call it after the erasure's deletes."""
    for job in jobs or (REDIS_JOB,):
        redis.eval(_REQUEST, 1, _key(job, "requested"))


def pending(redis: Any, job: str) -> bool:
    """Whether ``job`` has a request or a run not yet completed."""
    return bool(redis.exists(_key(job, "requested"), _key(job, "running")))


def run_once(
    redis: Any,
    job: str,
    work: Job,
    *,
    window_seconds: float,
    holder: str | None = None,
    lease_ms: int = LEASE_MS,
) -> bool:
    """Claim ``job`` if it is due and run ``work``; True when a run completed."""
    me = holder or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
    keys = (_key(job, "requested"), _key(job, "running"), _key(job, "lease"))
    if not int(redis.eval(_CLAIM, 3, *keys, me, int(window_seconds * 1000), lease_ms)):
        return False

    def beat() -> None:
        liveness.stamp(POLL_SECONDS)
        redis.eval(_RENEW, 1, keys[2], me, lease_ms)

    started = time.monotonic()
    try:
        work(beat)
    except BaseException:
        # Released but still due: the next claim (any replica's) runs it again.
        redis.eval(_FINISH, 3, keys[1], keys[2], done_key(job), me, "1")
        raise
    redis.eval(_FINISH, 3, keys[1], keys[2], done_key(job), me, "0")
    log.info(
        "compaction done",
        extra={"job": job, "duration_ms": round((time.monotonic() - started) * 1000)},
    )
    return True


def loop(
    redis: Any, job: str, work: Job, window_seconds: float, poll: float = POLL_SECONDS
) -> Callable[[threading.Event], None]:
    """A runnable for ``consumer_main``: runs ``job`` whenever it is due."""

    def compact(stop: threading.Event) -> None:
        while True:
            liveness.stamp(poll)
            if stop.wait(poll):
                return
            try:
                run_once(redis, job, work, window_seconds=window_seconds)
            except (redis_lib.RedisError, CompactionFailed) as exc:
                log.warning("compaction failed; retrying", extra={"job": job, "error": str(exc)})
                stop.wait(max(poll, 5.0))

    compact.__name__ = f"compaction_{job}"
    return compact


# -- the redis job --------------------------------------------------------------------


class CompactionFailed(RuntimeError):
    pass


def _nodes(redis: Any) -> Sequence[Any]:
    """A client per Redis node: every node of a cluster keeps its own files."""
    get_nodes = getattr(redis, "get_nodes", None)
    if get_nodes is None:
        return [redis]
    return [node.redis_connection or redis.get_redis_connection(node) for node in get_nodes()]


def _persistence(node: Any) -> dict[str, Any]:
    info = node.info("persistence")
    return info if isinstance(info, dict) else {}


def _wait(node: Any, busy: Callable[[dict[str, Any]], bool], beat: Beat) -> dict[str, Any]:
    while True:
        info = _persistence(node)
        if not busy(info):
            return info
        beat()
        time.sleep(INFO_POLL_SECONDS)


def _aof_busy(info: dict[str, Any]) -> bool:
    return bool(int(info.get("aof_rewrite_in_progress", 0))) or bool(
        int(info.get("aof_rewrite_scheduled", 0))
    )


def _rdb_busy(info: dict[str, Any]) -> bool:
    return bool(int(info.get("rdb_bgsave_in_progress", 0)))


def _snapshots_on(node: Any) -> bool:
    try:
        save = node.config_get("save").get("save", "")
    except redis_lib.ResponseError:  # CONFIG disabled (a managed Redis): not ours to run
        return False
    return bool(str(save).strip())


def rewrite_redis(redis: Any, beat: Beat) -> None:
    """Rewrite every node's AOF (and re-save its RDB when snapshots are configured),
    each after any rewrite already running, which may predate the erasure; returns
    when the new files are in place."""
    for node in _nodes(redis):
        info = _persistence(node)
        if str(info.get("aof_enabled", "0")) == "1":
            _wait(node, _aof_busy, beat)
            try:
                node.bgrewriteaof()
            except redis_lib.ResponseError as exc:
                if "in progress" not in str(exc):
                    # Refused for good (a managed Redis that renames the command): the
                    # provider's own rewrite policy then decides; retrying cannot help.
                    log.warning("BGREWRITEAOF refused", extra={"error": str(exc)})
                    continue
                _wait(node, _aof_busy, beat)  # a BGSAVE started meanwhile; ours is queued
                node.bgrewriteaof()
            done = _wait(node, _aof_busy, beat)
            if done.get("aof_last_bgrewrite_status", "ok") != "ok":
                raise CompactionFailed("the AOF rewrite failed; see the Redis log")
        if _snapshots_on(node):
            _wait(node, _rdb_busy, beat)
            try:
                node.bgsave()
            except redis_lib.ResponseError as exc:
                if "in progress" not in str(exc):
                    raise
                _wait(node, _rdb_busy, beat)  # another save began meanwhile: it may predate
                node.bgsave()
            done = _wait(node, _rdb_busy, beat)
            if done.get("rdb_last_bgsave_status", "ok") != "ok":
                raise CompactionFailed("the RDB save failed; see the Redis log")


def redis_loop(redis: Any, settings: Settings) -> Callable[[threading.Event], None]:
    """The runnable every consumer process runs: the Redis files after erasures."""
    return loop(redis, REDIS_JOB, lambda beat: rewrite_redis(redis, beat), window(settings))
