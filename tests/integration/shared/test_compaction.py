"""Compaction after erasures (shared/compaction.py) on a real redis-server with its
append-only file: coalesced, run once however many workers, never lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from shared import compaction
from shared.config import ConfigError, Settings
from shared.testing import RedisServer

JOB = "test-job"


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[tuple[redis_lib.Redis, Path]]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    client = redis_lib.Redis.from_url(server.url, decode_responses=True)
    yield client, tmp_path / "redis"
    client.close()
    server.stop()


def aof_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*.aof"))


def wait_until(condition: Callable[[], bool], bound: float = 60.0) -> bool:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_deleted_value_leaves_the_append_only_file_after_the_rewrite(
    aof_redis: tuple[redis_lib.Redis, Path],
) -> None:
    client, directory = aof_redis
    client.set("customer:x", "Quimbyzor +8613900001111")
    client.set("kept", "still here")
    client.delete("customer:x")
    assert wait_until(lambda: b"+8613900001111" in aof_bytes(directory))  # fsync: every second
    compaction.request(client)
    assert compaction.run_once(
        client,
        compaction.REDIS_JOB,
        lambda beat: compaction.rewrite_redis(client, beat),
        window_seconds=0,
    )
    assert b"+8613900001111" not in aof_bytes(directory)
    assert client.get("kept") == "still here"


def test_erasures_within_the_window_make_one_run_and_two_workers_run_it_once(
    aof_redis: tuple[redis_lib.Redis, Path],
) -> None:
    client, _ = aof_redis
    runs: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> compaction.Job:
        def rewrite(beat: compaction.Beat) -> None:
            with lock:
                runs.append(name)
            compaction.rewrite_redis(client, beat)

        return rewrite

    for _ in range(10):  # ten erasures
        compaction.request(client, JOB)
    stop = threading.Event()
    workers = [
        threading.Thread(target=compaction.loop(client, JOB, work(n), 1.0, poll=0.05), args=(stop,))
        for n in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    try:
        assert wait_until(lambda: client.get(compaction.done_key(JOB)) == "1")
        assert not compaction.pending(client, JOB)
        # An erasure after the run starts another, but not before the window has passed.
        compaction.request(client, JOB)
        assert wait_until(lambda: client.get(compaction.done_key(JOB)) == "2")
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert len(runs) == 2, runs


def test_nothing_runs_before_the_window_has_passed(aof_redis: tuple[redis_lib.Redis, Path]) -> None:
    client, _ = aof_redis
    compaction.request(client, JOB)
    ran: list[int] = []
    assert not compaction.run_once(client, JOB, lambda beat: ran.append(1), window_seconds=3600)
    assert ran == [] and compaction.pending(client, JOB)


def test_a_failed_run_stays_due_and_runs_again(aof_redis: tuple[redis_lib.Redis, Path]) -> None:
    client, _ = aof_redis
    compaction.request(client, JOB)

    def fail(_beat: compaction.Beat) -> None:
        raise compaction.CompactionFailed("the rewrite failed")

    with pytest.raises(compaction.CompactionFailed):
        compaction.run_once(client, JOB, fail, window_seconds=0)
    assert compaction.pending(client, JOB)
    assert compaction.run_once(client, JOB, lambda beat: None, window_seconds=0)
    assert not compaction.pending(client, JOB)


def test_with_the_aof_off_the_redis_job_does_nothing(redis: redis_lib.Redis) -> None:
    assert redis.info("persistence")["aof_enabled"] == 0
    compaction.rewrite_redis(redis, lambda: None)
    assert redis.info("persistence")["aof_rewrite_in_progress"] == 0


def test_the_window_is_capped_below_five_minutes(make_settings: Callable[..., Settings]) -> None:
    assert compaction.window(make_settings("crm")) == 60.0
    assert compaction.window(make_settings("crm", SB_COMPACTION_SECONDS="5")) == 5.0
    with pytest.raises(ConfigError, match="SB_COMPACTION_SECONDS"):
        compaction.window(make_settings("crm", SB_COMPACTION_SECONDS="600"))
