"""Projections of other services' events onto a customer's timeline.

Each consumed event becomes one timeline item (``kind``, ``channel``,
``summary``, ``refs``) so the next agent reads the story instead of asking.
Only ids and non-personal facts are projected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    channel: str | None
    summary: str
    refs: dict[str, Any] = field(default_factory=dict)


def _factors(data: Mapping[str, Any]) -> str:
    factors = data.get("factors") or []
    return ", ".join(str(f) for f in factors) if isinstance(factors, list) else ""


def project(event_type: str, data: Mapping[str, Any]) -> TimelineItem | None:
    """The timeline item for an identity/routing event, or None if not projected."""
    channel = data.get("channel")
    channel = str(channel) if channel else None
    if event_type == "identity.verification.approved":
        how = "reused an earlier verification" if data.get("reused") else _factors(data)
        return TimelineItem(
            "verification.approved",
            channel,
            f"identity verified ({how})" if how else "identity verified",
            {"verification_id": data.get("verification_id"), "sid": data.get("sid")},
        )
    if event_type in ("identity.verification.failed", "identity.verification.locked"):
        verb = event_type.rsplit(".", 1)[1]
        reason = data.get("reason")
        return TimelineItem(
            f"verification.{verb}",
            channel,
            f"identity verification {verb}" + (f": {reason}" if reason else ""),
            {"verification_id": data.get("verification_id")},
        )
    if event_type == "identity.device.trusted":
        return TimelineItem(
            "device.trusted", None, "device trusted", {"device_id": data.get("device_id")}
        )
    if event_type == "routing.task.assigned":
        waited = data.get("waited_ms")
        wait = f" after {int(waited) / 1000:.0f} s" if isinstance(waited, int | float) else ""
        return TimelineItem(
            "task.assigned",
            channel,
            f"{data.get('category', 'task')} conversation assigned to agent "
            f"{data.get('agent_id')}{wait}",
            {"task_id": data.get("task_id"), "agent_id": data.get("agent_id")},
        )
    if event_type == "routing.task.completed":
        return TimelineItem(
            "task.completed",
            channel,
            f"{data.get('category', 'task')} conversation completed by agent "
            f"{data.get('agent_id')}",
            {"task_id": data.get("task_id"), "agent_id": data.get("agent_id")},
        )
    if event_type == "routing.task.escalated":
        reason = data.get("reason")
        return TimelineItem(
            "task.escalated",
            channel,
            "conversation escalated" + (f": {reason}" if reason else ""),
            {"task_id": data.get("task_id")},
        )
    return None


PROJECTED_TYPES = (
    "identity.verification.approved",
    "identity.verification.failed",
    "identity.verification.locked",
    "identity.device.trusted",
    "routing.task.assigned",
    "routing.task.completed",
    "routing.task.escalated",
)
