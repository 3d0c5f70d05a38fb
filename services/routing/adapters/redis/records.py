"""Stored hashes -> domain values: the flat string hashes the Redis store keeps, parsed
here so none reaches the use cases."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from services.routing.domain.model import Agent, Task
from services.routing.domain.state import AgentRecord, Reservation, TaskRecord


def _loads(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def agent_from_hash(aid: str, h: Mapping[str, str]) -> Agent:
    caps = _loads(h.get("channels"), {})
    return Agent(
        id=aid,
        skills={k: int(v) for k, v in _loads(h.get("skills"), {}).items()},
        languages=frozenset(_loads(h.get("languages"), [])),
        capacity={k: int(v) for k, v in caps.items()},
        load={ch: int(h.get(f"load:{ch}", 0) or 0) for ch in caps},
        status=h.get("status", "offline"),
        idle_since_ms=int(float(h.get("idle_since", 0) or 0)),
        team=h.get("team") or None,
    )


def task_from_hash(tid: str, h: Mapping[str, str]) -> Task:
    sentiment = h.get("sentiment")
    return Task(
        id=tid,
        channel=h.get("channel", ""),
        customer_id=h.get("customer_id", ""),
        category=h.get("category", "basic"),
        skills={k: int(v) for k, v in _loads(h.get("skills"), {}).items()},
        language=h.get("language") or None,
        tier=h.get("tier") or None,
        sentiment=float(sentiment) if sentiment not in (None, "") else None,
        created_ms=int(h.get("created", 0)),
        sla_due_ms=int(h.get("due", 0)),
        team=h.get("team") or None,
        team_until_ms=int(float(h.get("team_until", 0) or 0)),
        sticky_agent=h.get("sticky_agent") or None,
        sticky_until_ms=int(float(h.get("sticky_until", 0) or 0)),
        declined={k: int(v) for k, v in _loads(h.get("declined"), {}).items()},
        status=h.get("status", "queued"),
    )


def agent_record(aid: str, h: Mapping[str, str]) -> AgentRecord:
    return AgentRecord(agent_from_hash(aid, h), h.get("name", ""), h.get("version", ""))


def task_record(tid: str, h: Mapping[str, str]) -> TaskRecord:
    return TaskRecord(
        task=task_from_hash(tid, h),
        attributes=_loads(h.get("attributes"), {}),
        priority=int(h.get("priority", 0)),
        agent_id=h.get("agent") or None,
        reservation_id=h.get("reservation") or None,
        verified=h.get("verified") == "1",
        escalated=h.get("escalated") == "1" or h.get("sla_escalated") == "1",
        case_id=h.get("case_id") or None,
        offered=tuple(filter(None, (h.get("offered") or "").split(","))),
    )


def reservation_record(rid: str, h: Mapping[str, str]) -> Reservation:
    return Reservation(
        id=rid,
        task_id=h.get("task", ""),
        agent_id=h.get("agent", ""),
        status=h.get("status", ""),
        channel=h.get("channel", ""),
        created_ms=int(h.get("created", 0)),
        expires_at=h.get("expires_at", ""),
    )


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply from a script as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
