"""Names routing could never serve are refused: a CRM case on a channel no agent can
have creates no task, and ids or names with a trailing newline are 400s (Python's ``$``
matched before a final newline, so "chat\\n" became a channel of its own)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from services.routing.app import create_app
from services.routing.consumer import handlers
from services.routing.service import RoutingService
from shared.events import Event

AGENT = {"skills": {"billing": 3}, "languages": ["en"], "channels": {"chat": 1}}
TASK = {"channel": "chat", "customer_id": "c-1", "category": "basic"}


def case(channel: str) -> Event:
    data = {"case_id": "k-" + channel, "profile_id": "p-1", "channel": channel, "priority": "low"}
    return Event.new("crm.case.created", data, source="crm")


@pytest.mark.parametrize("channel", ["0800", "c" * 40])
def test_a_case_on_a_channel_no_agent_can_have_creates_no_task(
    make_service: Callable[..., RoutingService],
    redis: Any,
    caplog: pytest.LogCaptureFixture,
    channel: str,
) -> None:
    service = make_service(tasks_from_cases=True)
    with caplog.at_level(logging.WARNING, logger="sb.routing.consumer"):
        handlers(service)["crm.case.created"](case(channel), None)  # type: ignore[arg-type]

    assert service.export_customer("p-1")["tasks"] == []
    assert service.store.channels() == []
    assert not redis.exists(f"sb:rt:{{default}}:queue:{channel}")
    (record,) = [r for r in caplog.records if r.name == "sb.routing.consumer"]
    assert record.levelno == logging.WARNING and record.channel == channel  # type: ignore[attr-defined]


def test_a_case_on_a_channel_agents_can_have_still_becomes_a_task(
    make_service: Callable[..., RoutingService],
) -> None:
    service = make_service(tasks_from_cases=True)
    handlers(service)["crm.case.created"](case("voice_2"), None)  # type: ignore[arg-type]
    (task,) = service.export_customer("p-1")["tasks"]
    assert task["channel"] == "voice_2"


@pytest.fixture
def client(make_settings: Any) -> Any:
    return create_app(make_settings("routing")).test_client()


@pytest.mark.parametrize(
    ("method", "path", "scope", "field"),
    [
        ("put", "/v1/agents/a4%0A", "admin", "agent_id"),
        ("get", "/v1/agents/a4%0A", "admin", "agent_id"),
        ("put", "/v1/agents/a4%0A/status", "agent", "agent_id"),
        ("get", "/v1/agents/a4%0A/reservations", "agent", "agent_id"),
        ("get", "/v1/tasks/a%0A", "agent", "task_id"),
        ("post", "/v1/tasks/a%0A/complete", "agent", "task_id"),
        ("post", "/v1/tasks/a%0A/cancel", "agent", "task_id"),
        ("post", "/v1/reservations/r%0A/accept", "agent", "reservation_id"),
        ("post", "/v1/reservations/r%0A/reject", "agent", "reservation_id"),
        ("get", "/v1/customers/c%0A/export", "admin", "customer_id"),
    ],
)
def test_a_path_id_with_a_trailing_newline_is_a_400(
    client: Any, headers: Any, redis: Any, method: str, path: str, scope: str, field: str
) -> None:
    bodies = {"/status": {"status": "available"}, "4%0A": {**AGENT, "status": "available"}}
    body = next((b for end, b in bodies.items() if path.endswith(end)), None)
    r = getattr(client, method)(path, json=body, headers=headers(scope))
    assert r.status_code == 400, r.json
    assert set(r.json["errors"]) == {field}
    assert not redis.exists("sb:rt:{default}:agent:a4\n")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tasks", {**TASK, "channel": "chat\n"}, "channel"),
        ("/v1/tasks", {**TASK, "skills": {"billing\n": 3}}, "skills"),
        ("/v1/tasks", {**TASK, "language": "en\n"}, "language"),
        ("/v1/tasks", {**TASK, "customer_id": "c-1\n"}, "customer_id"),
        ("/v1/agents/a1", {**AGENT, "channels": {"chat\n": 1}}, "channels"),
        ("/v1/agents/a1", {**AGENT, "skills": {"billing\n": 3}}, "skills"),
        ("/v1/agents/a1", {**AGENT, "languages": ["en\n"]}, "languages"),
    ],
)
def test_a_name_with_a_trailing_newline_in_a_body_is_a_400(
    client: Any, headers: Any, redis: Any, path: str, body: dict[str, Any], field: str
) -> None:
    if path == "/v1/tasks":
        r = client.post(path, json=body, headers=headers("channel"))
    else:
        r = client.put(path, json=body, headers=headers("admin"))
    assert r.status_code == 400, r.json
    assert set(r.json["errors"]) == {field}
    assert not redis.exists("sb:rt:{default}:queue:chat\n", "sb:rt:{default}:agent:a1")
