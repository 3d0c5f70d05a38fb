"""Value objects of routing: agents, tasks and their requirements (the errors are in
``errors.py``, re-exported here).

Times are integer milliseconds since the epoch: the Redis layer stores them so,
and integer arithmetic keeps the ordering keys exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.routing.domain.errors import AgentBinding as AgentBinding
from services.routing.domain.errors import InvalidRequest as InvalidRequest
from services.routing.domain.errors import InvalidTransition as InvalidTransition
from services.routing.domain.errors import NotFound as NotFound
from services.routing.domain.errors import RoutingError as RoutingError

CATEGORIES = ("basic", "complex", "urgent")
STATUSES = ("queued", "reserved", "assigned", "completed", "canceled")
AGENT_STATUSES = ("available", "away", "offline")
OPEN_STATUSES = ("queued", "reserved", "assigned")
# A channel an agent can have (so a task on it can be served). Matched whole (fullmatch):
# a pattern's $ also matches before a final newline, which made "chat\n" a channel.
CHANNEL_PATTERN = r"^[a-z][a-z0-9_\-]{0,31}$"
CHANNEL_NAME = re.compile(CHANNEL_PATTERN)


@dataclass(frozen=True)
class Requirements:
    """What an agent must have to be offered a task (after relaxation)."""

    channel: str
    skills: Mapping[str, int] = field(default_factory=dict)
    language: str | None = None  # None: any language (widened)
    team: str | None = None  # None: any team


@dataclass(frozen=True)
class Agent:
    id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    capacity: Mapping[str, int] = field(default_factory=dict)
    load: Mapping[str, int] = field(default_factory=dict)
    status: str = "offline"
    idle_since_ms: int = 0
    team: str | None = None

    def free(self, channel: str) -> int:
        return self.capacity.get(channel, 0) - self.load.get(channel, 0)

    @property
    def total_load(self) -> int:
        return sum(self.load.values())

    @property
    def total_capacity(self) -> int:
        return sum(self.capacity.values())

    @property
    def occupancy(self) -> float:
        """Share of the agent's capacity in use, 0..1 (0 when the agent has none)."""
        cap = self.total_capacity
        return min(1.0, self.total_load / cap) if cap else 0.0


@dataclass(frozen=True)
class Task:
    id: str
    channel: str
    customer_id: str
    category: str = "basic"
    skills: Mapping[str, int] = field(default_factory=dict)
    language: str | None = None
    tier: str | None = None
    sentiment: float | None = None
    created_ms: int = 0
    sla_due_ms: int = 0
    team: str | None = None  # required team (escalation) ...
    team_until_ms: int = 0  # ... until this time; 0 = for good
    sticky_agent: str | None = None
    sticky_until_ms: int = 0
    declined: Mapping[str, int] = field(default_factory=dict)  # agent -> declined until (ms)
    status: str = "queued"

    def waited_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.created_ms)


def iso(ms: int) -> str:
    """A time in ms as RFC 3339 with milliseconds, UTC (``Z``): how the API shows times."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
