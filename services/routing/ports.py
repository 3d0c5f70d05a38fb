"""What the routing use cases need from storage, one small Protocol per area. The Redis
adapter (``adapters/redis/store.py``) implements all of them.

Every mutating method is one atomic step that also records its events. Results are
frozen values (``domain/state.py``), never raw hashes: a refused transition is a
``Step`` with ``Outcome.REFUSED`` and the state that refused it (``domain/lifecycle.py``
has the table), ``Outcome.NOT_YOURS`` when the caller acts as an agent (``as_agent``)
the task or reservation is not held by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.routing.domain.model import Requirements, Task
from services.routing.domain.state import (
    AgentChange,
    AgentRecord,
    AgentTotals,
    Creation,
    QueueDepth,
    Reservation,
    ReserveOutcome,
    Step,
    TaskRecord,
)
from services.routing.domain.stats import AnswerTotals


class AgentStore(Protocol):
    def put_agent(self, aid: str, profile: Mapping[str, Any], now_ms: int) -> AgentChange: ...
    def set_status(self, aid: str, status: str, reason: str, now_ms: int) -> AgentChange | None: ...
    def agent(self, aid: str) -> AgentRecord | None: ...
    def agents_after(self, after: str, limit: int) -> list[AgentRecord]: ...
    def candidates(
        self,
        req: Requirements,
        want: int,
        *,
        declined: Mapping[str, int],
        exclude: Iterable[str] = (),
        now_ms: int,
        max_scan: int = 1024,
    ) -> list[AgentRecord]: ...
    def available_counts(self, channels: Iterable[str]) -> dict[str, int]: ...
    def reindex_agents(self, now_ms: int, batch: int = 500) -> int: ...


class TaskStore(Protocol):
    def create_task(
        self,
        tid: str,
        fields: Mapping[str, Any],
        timers: Sequence[tuple[str, int]],
        escalated: bool,
        now_ms: int,
        sticky_timeout_ms: int = 20_000,
        route: Requirements | None = None,
        offer: tuple[str, int] | None = None,
    ) -> Creation: ...
    def task(self, tid: str) -> TaskRecord | None: ...
    def queue_head(self, channel: str, limit: int, offset: int = 0) -> list[Task]: ...
    def queue_window(self, channel: str, limit: int, after: int = 0) -> list[Task]: ...
    def channels(self) -> list[str]: ...
    def reserve(
        self, tid: str, aid: str, rid: str, expires_ms: int, version: str, now_ms: int
    ) -> ReserveOutcome: ...
    def complete(
        self, tid: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step: ...
    def cancel(
        self, tid: str, reason: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step: ...
    def tick(
        self,
        limit: int,
        cooloff_ms: int,
        away_after: int,
        lead_team: str,
        now_ms: int,
        lead_wait_ms: int = 600_000,
    ) -> list[str]: ...


class ReservationStore(Protocol):
    def accept(
        self,
        rid: str,
        sticky_memory_s: int,
        now_ms: int,
        cooloff_ms: int = 30_000,
        away_after: int = 3,
        as_agent: str | None = None,
    ) -> Step: ...
    def reject(
        self, rid: str, cooloff_ms: int, now_ms: int, as_agent: str | None = None
    ) -> Step: ...
    def reservation(self, rid: str) -> Reservation | None: ...
    def pending_reservations(self, aid: str) -> list[Reservation]: ...
    def offer_cursor(self, aid: str) -> str: ...
    def wait_offer(self, aid: str, after: str, block_ms: int) -> str: ...


class StatsStore(Protocol):
    def channels(self) -> list[str]: ...
    def available_counts(self, channels: Iterable[str]) -> dict[str, int]: ...
    def waiting(
        self, categories: Sequence[str], channels: Sequence[str]
    ) -> dict[tuple[str, str], QueueDepth]: ...
    def answered(self, minutes: Sequence[int]) -> dict[tuple[str, str], AnswerTotals]: ...
    def agent_totals(self) -> AgentTotals: ...
    def kpi_window(self, window_seconds: int, now_s: float) -> dict[str, int]: ...


class PrivacyStore(Protocol):
    def customer_task_ids(self, customer_id: str) -> list[str]: ...
    def tasks(self, ids: Sequence[str]) -> list[TaskRecord]: ...
    def reservation(self, rid: str) -> Reservation | None: ...
    def last_agent(self, customer_id: str) -> str | None: ...
    def erase_customer(self, customer_id: str, now_ms: int) -> list[str]: ...
    def rekey_customer(self, src: str, dst: str, unmerge: bool, now_ms: int) -> int: ...
    def mark_verified(
        self, customer_id: str, verification_id: str, now_ms: int, remember_s: int = 1800
    ) -> int: ...


class EventRelay(Protocol):
    """The outbox relay the dispatcher runs (one at a time, under a lease)."""

    def acquire_lease(self, name: str, holder: str, ttl_ms: int) -> bool: ...
    def relay(self, target: str, maxlen: int, batch: int = 500, block_ms: int = 0) -> int: ...


class RoutingStore(AgentStore, TaskStore, ReservationStore, StatsStore, PrivacyStore, Protocol):
    """Every area at once: what one storage adapter provides."""
