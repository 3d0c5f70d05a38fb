"""A consumer process beats while it works and stops beating when it hangs or loses Redis;
``python -m shared.consumer_main healthy`` (the compose healthcheck) reads the beat. It
serves its consumers' counts on ``SB_METRICS_PORT``. One runnable stuck in its still-living
thread is enough to stop the beat, and every runnable the services run stamps its progress
(otherwise they would all report themselves hung)."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis as redis_lib

from shared import liveness
from shared.bus import Consumer, EventPublisher
from shared.config import Settings
from shared.consumer_main import healthy, main, start, supervise
from shared.events import STREAMS, Event
from shared.liveness import Progress
from shared.redis_conn import connect
from shared.stream_trim import trim_loop
from shared.testing import ROOT, RedisClusterServers, RedisServer, free_port


def until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@contextmanager
def supervised(
    runnables: Sequence[Callable[[threading.Event], None]],
    redis: redis_lib.Redis,
    beat: Path,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[None]:
    """``supervise`` in a thread (beat every 0.1 s, hung after 1.5 s), logs captured."""
    stop = threading.Event()
    supervisor = threading.Thread(
        target=supervise,
        args=("test", runnables, redis, stop),
        kwargs={"heartbeat": beat, "every": 0.1, "progress": Progress(max_age=1.5)},
    )
    # Another test may have left the root logger at CRITICAL: listen where it is said.
    logger = logging.getLogger("sb.consumer")
    caplog.set_level(logging.INFO, logger="sb.consumer")
    logger.addHandler(caplog.handler)
    supervisor.start()
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)
        stop.set()
        supervisor.join(timeout=30)
    assert not supervisor.is_alive()


def said(caplog: pytest.LogCaptureFixture, part: str) -> list[str]:
    """The consumer log's messages containing ``part``, each record once (a record may
    reach caplog twice: through its own handler and the root's)."""
    records = {id(r): r for r in caplog.records if r.name == "sb.consumer"}
    return [r.getMessage() for r in records.values() if part in r.getMessage()]


def test_the_heartbeat_follows_the_process_and_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    beat = tmp_path / "alive"
    env = {
        **os.environ,
        "SB_ENV": "dev",
        "REDIS_URL": server.url,
        "SB_VAR_DIR": str(tmp_path / "var"),
        "API_KEYS": "a:b:admin",
        "LOG_LEVEL": "CRITICAL",
        "SB_HEARTBEAT_FILE": str(beat),
        "SB_HEARTBEAT_SECONDS": "0.3",
        "SB_PROGRESS_MAX_AGE": "2",  # its consumers stamp at least every second when idle
        "SB_METRICS_PORT": str(metrics_port := free_port()),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.routing.consumer"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert until(lambda: healthy(beat, 2.0)), "no heartbeat from a working consumer"
        assert main(["healthy", "--file", str(beat), "--max-age", "2"]) == 0

        # What its consumers handled is on its /metrics.
        client = redis_lib.Redis.from_url(server.url, decode_responses=True)
        erased = Event.new("crm.profile.erased", {"profile_id": "c-health-1"}, source="crm")
        EventPublisher(client, STREAMS["crm"]).publish(erased)
        counted = 'event_type="crm.profile.erased",group="routing",outcome="handled"} 1.0'

        def scraped() -> str:
            return httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text

        assert until(lambda: counted in scraped()), scraped()
        client.close()

        process.send_signal(signal.SIGSTOP)  # hung: alive, doing nothing
        time.sleep(2.5)
        assert main(["healthy", "--file", str(beat), "--max-age", "2"]) == 1
        process.send_signal(signal.SIGCONT)
        assert until(lambda: healthy(beat, 1.0)), "no heartbeat after resuming"

        server.stop()  # Redis gone: the process lives on but must not claim health
        time.sleep(2.5)
        assert not healthy(beat, 2.0)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=30)
        server.stop()


def test_no_file_or_a_damaged_file_is_unhealthy(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    assert not healthy(beat, 30)
    beat.write_text("not a time")
    assert not healthy(beat, 30)
    beat.write_text("1000.0\n")
    assert healthy(beat, 30, now=1020.0) and not healthy(beat, 30, now=1031.0)


def test_a_runnable_hung_in_its_living_thread_stops_the_heartbeat_and_is_named(
    tmp_path: Path, redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    beat = tmp_path / "alive"
    seen: list[str] = []
    consumer = Consumer(
        redis,
        [STREAMS["crm"]],
        "health",
        "h-1",
        {"*": lambda e, _: seen.append(e.id)},
        block_ms=200,
    )
    hang, never = threading.Event(), threading.Event()

    def worker(stop: threading.Event) -> None:
        while not stop.is_set():
            liveness.stamp(0.05)
            if hang.is_set():
                never.wait()  # stuck, as on a lock or a socket without a timeout
            stop.wait(0.05)

    with supervised([consumer.run, worker], redis, beat, caplog):
        try:
            # Idle reads that block 200 ms and short waits alike keep the beat fresh.
            assert until(lambda: healthy(beat, 1.5)), "no heartbeat from working runnables"
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                assert healthy(beat, 1.5), "working runnables let the heartbeat go stale"
                time.sleep(0.1)

            hang.set()
            assert until(lambda: not healthy(beat, 1.5)), "a hung runnable kept the beat going"
            assert main(["healthy", "--file", str(beat), "--max-age", "1.5"]) == 1
            assert all(t.is_alive() for t in threading.enumerate() if t.name == "test-1-worker")
            # The consumer works on; only the beat is withheld, and the culprit named once.
            event = Event.new("crm.profile.erased", {"profile_id": "c-hung"}, source="crm")
            EventPublisher(redis, STREAMS["crm"]).publish(event)
            assert until(lambda: event.id in seen)
            assert not healthy(beat, 1.5)
            hung = said(caplog, "made no progress")
            assert len(hung) == 1 and hung[0].startswith("runnable test-1-worker "), hung

            never.set()  # unstuck: it stamps again, and the beat comes back
            assert until(lambda: healthy(beat, 1.5)), "no heartbeat after the runnable resumed"
        finally:
            never.set()  # before the stop: a stuck thread could not be joined


@pytest.mark.parametrize(
    ("module", "cluster"),
    [
        ("services.crm.consumer", False),
        ("services.identity.consumer", False),
        ("services.identity.consumer", True),  # adds the relay of the shards' outboxes
        ("services.routing.consumer", False),
        ("services.routing.dispatcher", False),
    ],
    ids=["crm", "identity", "identity-cluster", "routing", "routing-dispatcher"],
)
def test_every_runnable_of_every_consumer_process_stamps_its_progress(
    module: str,
    cluster: bool,
    make_settings: Callable[..., Settings],
    request: pytest.FixtureRequest,
) -> None:
    service = module.split(".")[1]
    env = {}
    if cluster:
        servers: RedisClusterServers = request.getfixturevalue("cluster_servers")
        env = {"REDIS_URL": servers.url, "REDIS_CLUSTER": "true"}
    settings = make_settings(service, **env)
    redis = connect(settings)
    # What shared.consumer_main.run starts: the service's runnables and the trim loop
    # (here every 0.1 s instead of 10 s, so that it, too, finishes passes quickly).
    runnables = [
        *importlib.import_module(module).build(settings, redis),
        trim_loop(redis, [STREAMS[service]], interval=0.1),
    ]
    progress, stop = Progress(), threading.Event()
    threads = start(service, runnables, stop, progress)
    try:
        # Two stamps each: a whole pass of every loop done, not just begun.
        def passed() -> bool:
            slots = progress.slots()
            return len(slots) == len(runnables) and all(s.stamps >= 2 for s in slots)

        assert until(passed), progress.slots()
        assert progress.hung() == []
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        redis.close()


def test_a_runnable_that_returns_before_the_stop_ends_the_beat_and_is_named(
    tmp_path: Path, redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    beat = tmp_path / "alive"
    leave = threading.Event()

    def worker(stop: threading.Event) -> None:
        while not stop.is_set() and not leave.is_set():
            liveness.stamp(0.05)
            stop.wait(0.05)

    with supervised([worker], redis, beat, caplog):
        assert until(lambda: healthy(beat, 1.5))
        leave.set()  # the loop returns though nobody asked it to stop
        assert until(lambda: not healthy(beat, 1.5)), "a finished runnable kept the beat"
        ended = said(caplog, "ended before the process")
        assert len(ended) == 1 and ended[0].startswith("runnable test-0-worker "), ended
    # a runnable that ends because of the stop is not reported
    assert len(said(caplog, "ended before the process")) == 1


def test_two_stacks_consumers_beat_each_in_its_own_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `make run` stacks on one machine (and two processes of one stack) never share a
    heartbeat file: once all wrote ``/tmp/sb-consumer-alive``, and one renamed the other's
    partial file away, which killed it and its stack."""
    server = RedisServer(tmp_path / "redis")
    stacks = {"a": tmp_path / "a" / "var", "b": tmp_path / "b" / "var"}
    base = {k: v for k, v in os.environ.items() if k != "SB_HEARTBEAT_FILE"}
    processes: dict[tuple[str, str], subprocess.Popen[bytes]] = {}

    def spawn(stack: str, module: str) -> None:
        env = {
            **base,
            "SB_ENV": "dev",
            "REDIS_URL": server.url,
            "SB_VAR_DIR": str(stacks[stack]),
            "API_KEYS": "a:b:admin",
            "LOG_LEVEL": "CRITICAL",
            "SB_HEARTBEAT_SECONDS": "0.2",
            "PYTHONPATH": str(ROOT),
        }
        processes[stack, module] = subprocess.Popen(
            [sys.executable, "-m", f"services.routing.{module}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    beats = {
        ("a", "consumer"): stacks["a"] / "run" / "routing-consumer.alive",
        ("a", "dispatcher"): stacks["a"] / "run" / "routing-dispatcher.alive",
        ("b", "consumer"): stacks["b"] / "run" / "routing-consumer.alive",
    }
    try:
        for stack, module in beats:
            spawn(stack, module)
        for key, beat in beats.items():
            assert until(lambda beat=beat: healthy(beat, 5.0), timeout=60), f"{key} never beat"
        monkeypatch.setenv("SB_VAR_DIR", str(stacks["a"]))
        monkeypatch.delenv("SB_HEARTBEAT_FILE", raising=False)
        assert main(["healthy", "--process", "routing-dispatcher", "--max-age", "5"]) == 0

        stopped = processes["b", "consumer"]
        stopped.terminate()
        stopped.wait(timeout=60)
        # Stack a beats on, untouched: its processes alive, their files rewritten since.
        for key in [("a", "consumer"), ("a", "dispatcher")]:
            before = beats[key].read_text()
            assert until(lambda k=key, b=before: beats[k].read_text() != b, timeout=60), key
            assert processes[key].poll() is None, f"{key} died"
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=60)
        server.stop()
