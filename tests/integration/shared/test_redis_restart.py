"""Redis goes away and comes back (AOF on): the kernel reconnects and loses nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import redis as redis_lib

from shared.app import build_app
from shared.bus import Consumer, EventPublisher
from shared.config import Settings
from shared.events import Event
from shared.testing import RedisServer


def test_readyz_follows_redis_and_the_consumer_resumes_after_a_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r", persistent=True)
    port = server.port
    settings = Settings.from_env(
        {
            "SB_ENV": "dev",
            "REDIS_URL": server.url,
            "SB_VAR_DIR": str(tmp_path / "var"),
            "API_KEYS": "a:b:admin",
            "LOG_LEVEL": "CRITICAL",
        },
        service="identity",
    )
    client = build_app(settings, title="t").test_client()
    r = redis_lib.Redis.from_url(server.url, decode_responses=True)
    publisher = EventPublisher(r, "sb:events:test")
    seen: list[int] = []
    consumer = Consumer(
        redis_lib.Redis.from_url(server.url, decode_responses=True),
        ["sb:events:test"],
        "g",
        "c",
        {"*": lambda e, d: seen.append(e.data["n"])},
        block_ms=50,
    )
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    try:
        publisher.publish(Event.new("t.x.y", {"n": 1}, source="t"))
        assert client.get("/readyz").status_code == 200
        server.stop()  # SIGTERM: redis writes its AOF and exits
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.get_json()["checks"]["redis"].startswith("unavailable")
        server = RedisServer(tmp_path / "r", port=port, persistent=True)
        assert client.get("/readyz").status_code == 200
        publisher.publish(Event.new("t.x.y", {"n": 2}, source="t"))
        deadline = time.monotonic() + 60
        while seen != [1, 2] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [1, 2]
    finally:
        stop.set()
        thread.join()
        server.stop()
