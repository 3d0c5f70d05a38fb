"""The CRM under gunicorn with its consumer process, driven like a channel adapter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.crm.testing import database_kinds, fresh_database
from shared.events import Event
from shared.testing import ROOT, GunicornService

Headers = Callable[[str], dict[str, str]]


@pytest.fixture(params=database_kinds())
def crm_env(
    request: pytest.FixtureRequest, base_env: dict[str, str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    with fresh_database(request.param, tmp_path, create=False) as url:
        env = {**base_env, "DATABASE_URL": url, "CRM_AUTO_MIGRATE": "false"}
        # What `make run` does before starting the CRM.
        subprocess.run(
            [sys.executable, "-m", "services.crm.migrate"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        yield env


@pytest.fixture
def crm_url(crm_env: dict[str, str]) -> Iterator[str]:
    with GunicornService("services.crm.app:create_app()", crm_env, workers=2) as service:
        yield service.url


@pytest.fixture
def consumer(crm_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.crm.consumer"],
        cwd=ROOT,
        env={**os.environ, **crm_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    process.wait(20)


def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_fifty_concurrent_resolves_over_http_make_one_profile(
    crm_url: str, headers: Headers
) -> None:
    body = {"identifiers": [{"type": "phone", "value": "+86 139 0013 9000"}], "create": True}

    def call(_: int) -> tuple[int, str]:
        response = httpx.post(
            f"{crm_url}/v1/profiles/resolve", json=body, headers=headers("channel"), timeout=30
        )
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, range(50)))
    assert {pid for _, pid in results} == {results[0][1]}
    assert sorted(code for code, _ in results) == [200] * 49 + [201]


def test_a_customer_story_reaches_the_timeline_and_the_stream(
    crm_url: str, consumer: Any, headers: Headers, redis: Any
) -> None:
    channel = headers("channel")
    profile = httpx.post(
        f"{crm_url}/v1/profiles/resolve",
        json={
            "identifiers": [{"type": "phone", "value": "13800138000"}],
            "create": True,
            "tier": "gold",
        },
        headers=channel,
        timeout=30,
    ).json()
    case = httpx.post(
        f"{crm_url}/v1/cases",
        json={"profile_id": profile["id"], "channel": "chat", "subject": "Refund for broken mug"},
        headers=channel,
        timeout=30,
    )
    assert case.status_code == 201
    verified = Event.new(
        "identity.verification.approved",
        {
            "verification_id": "v-1",
            "customer_id": profile["id"],
            "channel": "voice",
            "tier": "gold",
            "factors": ["sms_otp"],
            "sid": "s-1",
            "reused": False,
        },
        source="identity",
    )
    redis.xadd("sb:events:identity", verified.to_fields())
    redis.xadd("sb:events:identity", verified.to_fields())  # a duplicate delivery

    def timeline() -> list[dict[str, Any]]:
        items = httpx.get(
            f"{crm_url}/v1/profiles/{profile['id']}/timeline", headers=headers("agent"), timeout=30
        ).json()["items"]
        return items if any(i["kind"] == "verification.approved" for i in items) else []

    items = wait_for(timeline)
    assert [i["kind"] for i in items].count("verification.approved") == 1

    def crm_events() -> list[str]:
        types = [f["type"] for _, f in redis.xrange("sb:events:crm")]
        return types if "crm.case.created" in types else []

    types = wait_for(crm_events)
    assert types.count("crm.profile.created") == 1 and types.count("crm.case.created") == 1
    lookup = httpx.get(
        f"{crm_url}/v1/cases/lookup",
        params={"case_number": case.json()["case_number"], "phone": "+86 138 0013 8000"},
        headers=channel,
        timeout=30,
    )
    assert lookup.status_code == 200 and lookup.json()["category"] == "refund_return"
