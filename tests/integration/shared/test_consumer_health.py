"""A consumer process beats while it works and stops beating when it hangs or loses Redis;
``python -m shared.consumer_main healthy`` (the compose healthcheck) reads the beat. It
serves its consumers' counts on ``SB_METRICS_PORT``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis as redis_lib

from shared.bus import EventPublisher
from shared.consumer_main import healthy, main
from shared.events import STREAMS, Event
from shared.testing import ROOT, RedisServer, free_port


def until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


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
            return httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text

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
