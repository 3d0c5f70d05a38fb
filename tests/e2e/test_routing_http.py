"""The routing service under gunicorn, with its dispatcher and consumer processes,
driven over HTTP and streams the way a channel adapter and an agent desktop would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.events import Event
from shared.testing import ROOT, GunicornService


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def reservation_timeout() -> str:
    """Seconds an offer stays up: long enough for a busy machine's test to answer it (at
    1 s, an accept came too late under load); the dispatcher's test asks for 1."""
    return "60"


@pytest.fixture
def routing_env(base_env: dict[str, str], redis: Any, reservation_timeout: str) -> dict[str, str]:
    return {
        **base_env,
        "ROUTING_RESERVATION_TIMEOUT": reservation_timeout,
        "ROUTING_SLA_BASIC": "2",
    }


@pytest.fixture
def routing(routing_env: dict[str, str]) -> Iterator[GunicornService]:
    with GunicornService("services.routing.app:create_app()", routing_env) as service:
        yield service


@pytest.fixture
def processes(routing_env: dict[str, str]) -> Iterator[None]:
    env = {**os.environ, **routing_env, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", f"services.routing.{name}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("dispatcher", "consumer")
    ]
    yield
    for proc in procs:
        proc.terminate()
        proc.wait(15)


def public_events(redis: Any, prefix: str = "routing.") -> list[dict[str, Any]]:
    return [
        {"type": f["type"], **json.loads(f["data"])}
        for _, f in redis.xrange("sb:events:routing")
        if f["type"].startswith(prefix)
    ]


AGENT = {"name": "Li", "skills": {"billing": 4}, "languages": ["zh"], "channels": {"chat": 2}}
TASK = {
    "channel": "chat",
    "customer_id": "c-9",
    "category": "basic",
    "skills": {"billing": 3},
    "language": "zh",
    "tier": "gold",
    "sentiment": 0.2,
}


def test_a_contact_is_offered_accepted_and_completed_over_http(
    routing: GunicornService, headers: Callable[[str], dict[str, str]]
) -> None:
    url = routing.url
    r = httpx.put(f"{url}/v1/agents/li", json=AGENT, headers=headers("admin"), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "offline"
    r = httpx.put(
        f"{url}/v1/agents/li/status",
        json={"status": "available"},
        headers=headers("agent"),
        timeout=30,
    )
    assert r.json()["status"] == "available"

    r = httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("channel"), timeout=30)
    assert r.status_code == 201
    task = r.json()
    assert {"task_id", "status", "priority", "sla_due_at"} <= set(task)
    assert task["status"] == "reserved" and task["priority"] == 15

    offers = httpx.get(
        f"{url}/v1/agents/li/reservations", headers=headers("agent"), timeout=30
    ).json()
    (offer,) = offers["items"]
    assert offer["task"]["task_id"] == task["task_id"]
    r = httpx.post(
        f"{url}/v1/reservations/{offer['reservation_id']}/accept",
        headers=headers("agent"),
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert (
        httpx.get(
            f"{url}/v1/tasks/{task['task_id']}", headers=headers("channel"), timeout=30
        ).json()["status"]
        == "assigned"
    )
    r = httpx.post(
        f"{url}/v1/tasks/{task['task_id']}/complete", headers=headers("agent"), timeout=30
    )
    assert r.json()["status"] == "completed"
    r = httpx.post(
        f"{url}/v1/tasks/{task['task_id']}/complete", headers=headers("agent"), timeout=30
    )
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"

    stats = httpx.get(f"{url}/v1/stats/queues", headers=headers("admin"), timeout=30).json()
    row = next(i for i in stats["items"] if (i["category"], i["channel"]) == ("basic", "chat"))
    assert row["answered"] == 1 and row["service_level"] == 1.0 and row["agents_available"] == 1
    agents = httpx.get(
        f"{url}/v1/stats/agents?limit=1", headers=headers("admin"), timeout=30
    ).json()
    assert agents["items"][0]["agent_id"] == "li" and agents["next_cursor"] is None
    export = httpx.get(
        f"{url}/v1/customers/c-9/export", headers=headers("admin"), timeout=30
    ).json()
    assert [t["task_id"] for t in export["tasks"]] == [task["task_id"]]
    assert "sb_routing_waiting_tasks" in httpx.get(f"{url}/metrics", timeout=30).text


def test_bad_requests_are_problems_never_500s(
    routing: GunicornService, headers: Callable[[str], dict[str, str]]
) -> None:
    url = routing.url
    r = httpx.post(
        f"{url}/v1/tasks",
        json={**TASK, "category": "vip", "bogus": 1},
        headers=headers("channel"),
        timeout=30,
    )
    assert r.status_code == 400 and set(r.json()["errors"]) == {"category", "bogus"}
    r = httpx.post(
        f"{url}/v1/tasks", json={**TASK, "sentiment": 3}, headers=headers("channel"), timeout=30
    )
    assert r.status_code == 400
    r = httpx.put(
        f"{url}/v1/agents/li",
        json={**AGENT, "skills": {"billing": 9}},
        headers=headers("admin"),
        timeout=30,
    )
    assert r.status_code == 400
    assert httpx.post(f"{url}/v1/tasks", json=TASK, timeout=30).status_code == 401
    assert (
        httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("agent"), timeout=30).status_code
        == 403
    )
    assert (
        httpx.get(f"{url}/v1/tasks/nope", headers=headers("agent"), timeout=30).status_code == 404
    )
    r = httpx.post(f"{url}/v1/reservations/nope/accept", headers=headers("agent"), timeout=30)
    assert r.status_code == 404
    r = httpx.put(f"{url}/v1/agents/bad%20id", json=AGENT, headers=headers("admin"), timeout=30)
    assert r.status_code == 400
    spec = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert {
        "/v1/tasks",
        "/v1/agents/{agent_id}/reservations",
        "/v1/stats/queues",
        "/v1/customers/{customer_id}/export",
    } <= set(spec["paths"])


@pytest.mark.parametrize("reservation_timeout", ["1"])
def test_the_dispatcher_times_out_offers_escalates_and_relays_events(
    routing: GunicornService,
    processes: None,
    redis: Any,
    headers: Callable[[str], dict[str, str]],
) -> None:
    url = routing.url
    httpx.put(
        f"{url}/v1/agents/li",
        json={**AGENT, "status": "available"},
        headers=headers("admin"),
        timeout=30,
    )
    task = httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("channel"), timeout=30).json()
    assert task["status"] == "reserved"
    wait_for(lambda: public_events(redis, "routing.reservation.timeout"))
    wait_for(lambda: public_events(redis, "routing.task.escalated"))
    escalated = public_events(redis, "routing.task.escalated")
    assert [(e["task_id"], e["reason"]) for e in escalated] == [(task["task_id"], "sla")]
    ids = [f["id"] for _, f in redis.xrange("sb:events:routing")]
    assert len(ids) == len(set(ids))


def test_the_consumer_forgets_an_erased_customer(
    routing: GunicornService,
    processes: None,
    redis: Any,
    headers: Callable[[str], dict[str, str]],
) -> None:
    url = routing.url
    task = httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("channel"), timeout=30).json()
    approved = Event.new(
        "identity.verification.approved",
        {
            "verification_id": "v1",
            "customer_id": "c-9",
            "channel": "chat",
            "tier": "gold",
            "factors": ["totp"],
            "sid": "s",
            "reused": False,
        },
        source="identity",
    )
    redis.xadd("sb:events:identity", approved.to_fields())
    wait_for(
        lambda: httpx.get(
            f"{url}/v1/tasks/{task['task_id']}", headers=headers("agent"), timeout=30
        ).json()["verified"]
    )
    erased = Event.new("crm.profile.erased", {"profile_id": "c-9"}, source="crm")
    redis.xadd("sb:events:crm", erased.to_fields())
    redis.xadd("sb:events:crm", erased.to_fields())  # delivered twice: no harm
    wait_for(
        lambda: (
            httpx.get(
                f"{url}/v1/tasks/{task['task_id']}", headers=headers("agent"), timeout=30
            ).status_code
            == 404
        )
    )
    export = httpx.get(
        f"{url}/v1/customers/c-9/export", headers=headers("admin"), timeout=30
    ).json()
    assert export["tasks"] == [] and export["last_agent_id"] is None
    canceled = wait_for(lambda: public_events(redis, "routing.task.canceled"))
    assert canceled[0]["reason"] == "erased"


def test_a_desktop_long_polls_for_its_next_offer(
    routing: GunicornService, headers: Callable[[str], dict[str, str]]
) -> None:
    import threading

    url = routing.url
    httpx.put(
        f"{url}/v1/agents/li",
        json={**AGENT, "status": "available"},
        headers=headers("admin"),
        timeout=30,
    )
    got: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        r = httpx.get(
            f"{url}/v1/agents/li/reservations?wait=10", headers=headers("agent"), timeout=30
        )
        got.update(body=r.json(), seconds=time.monotonic() - started)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poll (most likely) waits already when the task comes
    task = httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("channel"), timeout=30).json()
    poller.join(30)
    assert [i["task_id"] for i in got["body"]["items"]] == [task["task_id"]]
    # Woken by the offer, before its 10 s wait ran out: the wait's end is the line, not a
    # guess at how fast a busy machine answers.
    assert got["seconds"] < 10


def test_a_repeated_task_creation_with_the_same_idempotency_key_creates_one_task(
    routing: GunicornService, headers: Callable[[str], dict[str, str]]
) -> None:
    h = {**headers("channel"), "Idempotency-Key": "k-42"}
    first = httpx.post(f"{routing.url}/v1/tasks", json=TASK, headers=h, timeout=30)
    again = httpx.post(f"{routing.url}/v1/tasks", json=TASK, headers=h, timeout=30)
    assert first.status_code == again.status_code == 201
    assert first.json()["task_id"] == again.json()["task_id"]
    other = httpx.post(
        f"{routing.url}/v1/tasks", json={**TASK, "category": "urgent"}, headers=h, timeout=30
    )
    assert other.status_code == 409


def test_long_polls_beyond_the_per_process_bound_answer_at_once_and_never_stall_tasks(
    routing_env: dict[str, str], headers: Callable[[str], dict[str, str]]
) -> None:
    import threading

    # One worker whose long-polls are bounded to 2 (a gevent worker's default bound is
    # half its --worker-connections, too many to exhaust here).
    env = {**routing_env, "ROUTING_LONG_POLL_SLOTS": "2"}
    with GunicornService("services.routing.app:create_app()", env, workers=1) as svc:
        url = svc.url
        for aid in ("d1", "d2", "d3", "d4"):  # offline: never offered anything
            httpx.put(f"{url}/v1/agents/{aid}", json=AGENT, headers=headers("admin"), timeout=30)
        answers: list[tuple[float, float, int, str | None]] = []  # ended, lasted, ...

        def poll(aid: str) -> None:
            started = time.monotonic()
            r = httpx.get(
                f"{url}/v1/agents/{aid}/reservations?wait=4", headers=headers("agent"), timeout=30
            )
            ended = time.monotonic()
            answers.append((ended, ended - started, r.status_code, r.headers.get("retry-after")))

        pollers = [threading.Thread(target=poll, args=(a,)) for a in ("d1", "d2", "d3", "d4")]
        for p in pollers:
            p.start()
        time.sleep(0.8)  # the polls (most likely) are in
        r = httpx.post(f"{url}/v1/tasks", json=TASK, headers=headers("channel"), timeout=30)
        created = time.monotonic()
        for p in pollers:
            p.join(30)
    assert r.status_code == 201
    answers.sort()
    assert [code for _, _, code, _ in answers] == [200] * 4
    quick, held = answers[:2], answers[2:]
    assert all(retry == "1" for _, _, _, retry in quick)
    assert all(lasted > 3.5 and retry is None for _, lasted, _, retry in held)
    # Those beyond the bound answered at once and the task was not stalled behind the
    # held ones: told by the order of events, not by a time budget a busy machine misses.
    assert max(ended for ended, *_ in quick) < min(ended for ended, *_ in held)
    assert created < min(ended for ended, *_ in held)


def test_an_idle_keep_alive_connection_outlives_the_clients_pool_timeout(
    routing: GunicornService,
) -> None:
    """The server keeps an idle connection longer than clients do (httpx: 5 s), so a
    request on a reused connection never meets a close (shared/serving.py)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", routing.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b'{"status":"ok"}'
        first = conn.sock
        time.sleep(6)  # past gunicorn's 2 s default and httpx's 5 s pool expiry
        conn.request("GET", "/healthz")  # on a closed connection: RemoteDisconnected
        assert conn.getresponse().status == 200
        assert conn.sock is first  # the same connection, not a new one
    finally:
        conn.close()
