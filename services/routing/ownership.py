"""What a key bound to one agent may reach in routing (API.md B "Keys bound to an agent").

The entrypoint passes the caller's bound agent (``shared.auth.bound_agent()``, None
for an unbound key) and these checks compare it with the resource's agent; the
transitions (accept, reject, complete, cancel) take it down to the store instead,
whose Lua script checks it in the same step as the change, so a task re-offered to
another agent meanwhile is never touched.

403 or 404: an agent id in the path is compared before anything is read, so a
bound key learns nothing about other agents. A task or reservation id that does
not exist is 404, one held by another agent 403: their ids are random (122 bits),
so the difference tells nothing a caller could enumerate.
"""

from __future__ import annotations

from typing import Any

from services.routing.domain.model import AgentBinding
from services.routing.service import RoutingService


def require_agent(bound: str | None, agent_id: str) -> str:
    """``agent_id`` when the caller may act as that agent."""
    if bound is not None and agent_id != bound:
        raise AgentBinding("this API key acts only as its own agent")
    return agent_id


def require_unbound(bound: str | None, what: str) -> None:
    """For views of every agent at once (the roster): not for a key bound to one."""
    if bound is not None:
        raise AgentBinding(f"{what} shows every agent; this API key acts only as its own")


def task_view(service: RoutingService, tid: str, bound: str | None) -> dict[str, Any]:
    """The task, when an unbound key or the agent it is reserved or assigned to asks
    (a queued task belongs to no agent yet: not to a bound key either)."""
    view = service.task_view(tid)  # 404 first
    if bound is not None and view["agent_id"] != bound:
        raise AgentBinding("the task is another agent's; this API key acts only as its own")
    return view
