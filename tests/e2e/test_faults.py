"""Faults, as tests: consumers killed with SIGKILL mid-batch, Redis restarted mid-journey."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from scripts.journey import Endpoints, Journey
from services.crm.adapters import sql_tables
from services.crm.app import create_app as create_crm
from shared.bus import EventPublisher
from shared.config import Settings
from shared.events import STREAMS, Event
from shared.testing import ROOT, RedisServer
from tests.conftest import API_KEYS
from tests.e2e.product import start_product


def start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_crm_consumer_killed_mid_batch_applies_every_event_exactly_once(
    base_env: dict[str, str], make_settings: Callable[..., Settings], redis: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    env = {
        **base_env,
        "DATABASE_URL": url,
        "SB_CONSUMER_VISIBILITY_MS": "300",
        "SB_CONSUMER_BATCH": "50",
    }
    subprocess.run(
        [sys.executable, "-m", "services.crm.migrate"],
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
    )
    crm = create_crm(make_settings("crm", DATABASE_URL=url)).test_client()
    created = crm.post(
        "/v1/profiles",
        json={"identifiers": [{"type": "email", "value": "fault@example.com"}]},
        headers={"Authorization": f"Bearer {API_KEYS['channel']}"},
    )
    assert created.status_code == 201, created.get_json()
    profile = created.get_json()["id"]
    events = [
        Event.new(
            "identity.verification.approved",
            {
                "verification_id": f"v-{i}",
                "customer_id": profile,
                "channel": "chat",
                "tier": "default",
                "factors": ["totp"],
                "sid": f"s-{i}",
                "reused": False,
            },
            source="identity",
        )
        for i in range(2000)
    ]
    publisher = EventPublisher(redis, STREAMS["identity"])
    for i in range(0, len(events), 500):
        publisher.publish_many(events[i : i + 500])
    engine = create_engine(url)

    def projected() -> int:
        with engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(sql_tables.timeline)
                .where(
                    sql_tables.timeline.c.profile_id == profile,
                    sql_tables.timeline.c.kind == "verification.approved",
                )
            ).scalar_one()

    first = start("services.crm.consumer", env)
    try:
        wait_for("the first consumer to get going", lambda: projected() >= 300)
        os.kill(first.pid, signal.SIGKILL)  # mid-batch: entries read, not all acknowledged
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert projected() < len(events)
    publisher.publish_many(events[:200])  # and a relay that published some twice
    second = start("services.crm.consumer", env)
    try:
        wait_for("every event projected", lambda: projected() >= len(events), timeout=60)
        wait_for(
            "nothing left pending",
            lambda: redis.xpending(STREAMS["identity"], "crm")["pending"] == 0,
        )
        time.sleep(0.5)  # would any duplicate still land?
        assert projected() == len(events)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from crm_inbox")).scalar_one() == len(events)
    engine.dispose()


def test_redis_restarting_mid_journey_loses_nothing(tmp_path: Path) -> None:
    product = start_product(tmp_path)
    seen_down: dict[str, int] = {}

    def restart_redis(step: str) -> None:
        if step != "routing: chat task to agent":
            return
        port = product.redis.port
        product.redis.stop()  # SIGTERM: redis-server writes its AOF and exits
        with httpx.Client(timeout=10) as probe:
            for service, url in product.urls.items():
                seen_down[service] = probe.get(url + "/readyz").status_code
            product.redis = RedisServer(tmp_path / "redis", port=port, persistent=True)
            for url in product.urls.values():
                wait_for(
                    f"{url} ready again", lambda u=url: probe.get(u + "/readyz").status_code == 200
                )

    try:
        with httpx.Client(timeout=10) as client:
            journey = Journey(
                Endpoints(**product.urls, keys=API_KEYS), client, after_step=restart_redis
            )
            journey.prepare()
            # The voice half runs on the restarted Redis: the session issued before the
            # restart still verifies the caller, the agents and the policy are still there,
            # and the consumers resume (the timeline step waits for their projections).
            facts = journey.run()
        assert seen_down == {"identity": 503, "crm": 503, "routing": 503}
        assert facts["agent"] in journey.agents
    finally:
        product.stop()
