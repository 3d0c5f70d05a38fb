"""Never lose a task: a queued task reaches an idle eligible agent however deep it sits.

Each scenario reproduces a way a task used to wait forever next to an idle agent
that could serve it.
"""

from __future__ import annotations

from typing import Any

from services.routing.service import RoutingService

from .conftest import Clock


def _task(service: RoutingService, clock: Clock, language: str, **kw: Any) -> dict[str, Any]:
    clock.advance(0.001)  # distinct creation times: a stable queue order
    cmd = {"channel": "chat", "customer_id": "c-1", "category": "basic", "language": language}
    return service.create_task({**cmd, **kw})


def _agent(service: RoutingService, aid: str, **kw: Any) -> None:
    profile = {"name": aid, "skills": {}, "languages": ["en"], "channels": {"chat": 1}}
    service.put_agent(aid, {**profile, "status": "available", **kw})


def test_a_task_behind_130_unservable_ones_reaches_a_freed_agent(
    service: RoutingService, clock: Clock
) -> None:
    for _ in range(130):
        _task(service, clock, "fr")
    en = _task(service, clock, "en")
    _agent(service, "en1")  # its own look reads only the first 128 tasks
    for _ in range(6):
        service.tick()
        service.sweep()
    view = service.task_view(en["task_id"])
    assert (view["status"], view["agent_id"]) == ("reserved", "en1")


def test_the_sweep_cursor_is_shared_by_dispatchers(make_service: Any, clock: Clock) -> None:
    first, second = make_service(), make_service()
    for _ in range(130):
        _task(first, clock, "fr")
    en = _task(first, clock, "en")
    _agent(first, "en1")
    # head 0-39 each time; the windows 40-79 and 80-119, then 120-159 reaches rank 130
    first.sweep(per_channel=40)
    second.sweep(per_channel=40)
    assert first.task_view(en["task_id"])["status"] == "queued"
    first.sweep(per_channel=40)
    assert first.task_view(en["task_id"])["agent_id"] == "en1"


def test_a_task_escalated_to_team_leads_falls_back_when_no_lead_takes_it(
    service: RoutingService, clock: Clock
) -> None:
    t = _task(service, clock, "en")
    clock.advance(7201)
    service.tick()
    assert service.task_view(t["task_id"])["team"] == "team-lead"
    _agent(service, "plain")
    assert service.task_view(t["task_id"])["status"] == "queued"  # leads first ...
    clock.advance(service.config.lead_team_wait_s + 1)
    service.tick()  # ... then anyone qualified, like the senior-team rule
    assert service.task_view(t["task_id"])["agent_id"] == "plain"
