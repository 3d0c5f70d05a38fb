"""Use-case results as the API shows them: frozen records -> plain dicts (the schemas
dump these)."""

from __future__ import annotations

from typing import Any

from services.routing.domain.model import iso
from services.routing.domain.state import AgentRecord, Reservation, TaskRecord


def agent_view(record: AgentRecord) -> dict[str, Any]:
    agent = record.agent
    return {
        "agent_id": agent.id,
        "name": record.name,
        "team": agent.team,
        "skills": dict(agent.skills),
        "languages": sorted(agent.languages),
        "channels": dict(agent.capacity),
        "status": agent.status,
        "load": dict(agent.load),
        "occupancy": round(agent.occupancy, 4),
        "idle_since": iso(agent.idle_since_ms) if agent.idle_since_ms else None,
    }


def task_view(record: TaskRecord) -> dict[str, Any]:
    t = record.task
    return {
        "task_id": t.id,
        "status": t.status,
        "channel": t.channel,
        "customer_id": t.customer_id,
        "category": t.category,
        "skills": dict(t.skills),
        "language": t.language,
        "tier": t.tier,
        "sentiment": t.sentiment,
        "attributes": dict(record.attributes),
        "priority": record.priority,
        "created_at": iso(t.created_ms),
        "sla_due_at": iso(t.sla_due_ms),
        "agent_id": record.agent_id,
        "reservation_id": record.reservation_id,
        "verified": record.verified,
        "escalated": record.escalated,
        "team": t.team,
        "case_id": record.case_id,
    }


def reservation_view(r: Reservation) -> dict[str, Any]:
    return {
        "reservation_id": r.id,
        "task_id": r.task_id,
        "agent_id": r.agent_id,
        "status": r.status,
        "channel": r.channel,
        "created_at": iso(r.created_ms),
        "expires_at": r.expires_at,
    }
