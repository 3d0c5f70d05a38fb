"""Agent occupancy on /metrics, scraped from the app on a real redis-server."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from services.routing.app import create_app
from shared.config import Settings


def gauge(text: str, name: str, channel: str) -> float:
    match = re.search(rf'^{name}{{channel="{channel}"}} (\S+)$', text, re.M)
    assert match, f"{name}{{channel={channel}}} missing"
    return float(match.group(1))


def test_metrics_report_capacity_and_occupancy_of_signed_in_agents(
    make_settings: Callable[..., Settings],
    redis: Any,
    headers: Callable[[str], dict[str, str]],
) -> None:
    client = create_app(make_settings("routing"), redis=redis).test_client()
    agent = {"skills": {"billing": 4}, "languages": ["zh"], "channels": {"chat": 2}}
    put = client.put(
        "/v1/agents/a1", json={**agent, "status": "available"}, headers=headers("admin")
    )
    assert put.status_code == 200
    client.put(
        "/v1/agents/a2",
        json={**agent, "channels": {"chat": 2, "voice": 1}, "status": "away"},
        headers=headers("admin"),
    )
    task = {"channel": "chat", "customer_id": "c-1", "skills": {"billing": 3}, "language": "zh"}
    assert client.post("/v1/tasks", json=task, headers=headers("channel")).status_code == 201

    text = client.get("/metrics").get_data(as_text=True)
    assert gauge(text, "sb_routing_capacity_slots", "chat") == 4
    assert gauge(text, "sb_routing_capacity_slots", "voice") == 1
    assert gauge(text, "sb_routing_occupancy_ratio", "chat") == 0.25
    assert gauge(text, "sb_routing_occupancy_ratio", "voice") == 0

    # Signing out removes the agent's capacity; a profile change replaces it.
    client.put("/v1/agents/a2", json={**agent, "status": "offline"}, headers=headers("admin"))
    client.put("/v1/agents/a1", json={**agent, "channels": {"chat": 4}}, headers=headers("admin"))
    text = client.get("/metrics").get_data(as_text=True)
    assert gauge(text, "sb_routing_capacity_slots", "chat") == 4
    assert gauge(text, "sb_routing_occupancy_ratio", "chat") == 0.25
    assert gauge(text, "sb_routing_capacity_slots", "voice") == 0


def test_an_agent_with_a_channel_of_capacity_0_signs_out_and_changes_profile(
    make_settings: Callable[..., Settings],
    redis: Any,
    headers: Callable[[str], dict[str, str]],
) -> None:
    client = create_app(make_settings("routing"), redis=redis).test_client()
    agent = {"languages": ["en"], "channels": {"chat": 2, "voice": 0}}
    for status in ("available", "offline", "away"):
        put = client.put(
            "/v1/agents/a1", json={**agent, "status": status}, headers=headers("admin")
        )
        assert put.status_code == 200, put.get_json()
    client.put("/v1/agents/a1", json={**agent, "channels": {"chat": 1}}, headers=headers("admin"))
    out = client.put("/v1/agents/a1/status", json={"status": "offline"}, headers=headers("agent"))
    assert out.status_code == 200, out.get_json()
    text = client.get("/metrics").get_data(as_text=True)
    assert gauge(text, "sb_routing_capacity_slots", "chat") == 0
