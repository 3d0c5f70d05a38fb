"""What the ports return: stored state as frozen values, and the outcome of a step.

The Redis adapter parses its hashes into these (``adapters/redis/records.py``); no
raw hash reaches the use cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.routing.domain.model import Agent, Task


@dataclass(frozen=True)
class AgentRecord:
    agent: Agent
    name: str = ""
    version: str = ""  # bumped by every profile change: a reserve re-checks it

    @property
    def id(self) -> str:
        return self.agent.id


@dataclass(frozen=True)
class TaskRecord:
    task: Task
    attributes: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    agent_id: str | None = None
    reservation_id: str | None = None
    verified: bool = False
    escalated: bool = False  # by sentiment or by a breached SLA
    case_id: str | None = None
    offered: tuple[str, ...] = ()  # every reservation made for it, oldest first

    @property
    def id(self) -> str:
        return self.task.id


@dataclass(frozen=True)
class Reservation:
    id: str
    task_id: str
    agent_id: str
    status: str
    channel: str
    created_ms: int
    expires_at: str


class ReserveOutcome(StrEnum):
    OK = "ok"
    TASK_NOT_QUEUED = "task_not_queued"
    AGENT_NOT_AVAILABLE = "agent_not_available"
    AGENT_CHANGED = "agent_changed"
    AGENT_FULL = "agent_full"


class Outcome(StrEnum):
    OK = "ok"
    MISSING = "missing"
    NOT_YOURS = "not_yours"  # the caller acts as an agent that does not hold it
    REFUSED = "refused"  # the state does not allow it: ``Step.state`` says which
    EXPIRED = "expired"  # an accept past the offer's expiry: ended as a timeout


@dataclass(frozen=True)
class Step:
    """The outcome of one transition, with what the use case needs next."""

    outcome: Outcome
    state: str = ""  # the state it was in, when REFUSED
    task: TaskRecord | None = None
    reservation: Reservation | None = None
    freed_agent: str | None = None
    waiting: int = 0  # tasks waiting on the freed agent's channel (complete)


@dataclass(frozen=True)
class Creation:
    created: bool  # False: the id existed (a redelivery)
    sticky_agent: str | None = None  # the customer's previous agent it waits for
    agent: str | None = None  # reserved in the same step (default strategy)
    verified_by: str | None = None  # a verification that came before the task


@dataclass(frozen=True)
class AgentChange:
    created: bool  # a new agent
    requeued: tuple[str, ...] = ()  # tasks whose offers ended as it went offline


@dataclass(frozen=True)
class QueueDepth:
    count: int
    oldest_created_ms: int | None


@dataclass(frozen=True)
class AgentTotals:
    by_status: Mapping[str, int]
    busy_slots: Mapping[str, int]  # per channel
    capacity_slots: Mapping[str, int]  # per channel, agents not offline
