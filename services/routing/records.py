"""Stored records <-> domain values: the flat string hashes the store keeps, parsed.

Shared by the Redis adapter and the use cases, free of any driver.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.routing.domain.model import Agent, Task


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


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
