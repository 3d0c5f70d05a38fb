"""What the routing use cases need from storage. The Redis adapter implements it.

Every mutating method is one atomic step that also records its events; the
string outcomes are ``"ok"``, ``"missing"`` or ``"<thing>_<state>"`` (e.g.
``"task_completed"``) for a transition the current state does not allow, and
``"not_yours"`` when the caller acts as an agent (``as_agent``) the task or
reservation is not held by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.routing.domain.model import Agent, Requirements, Task


class RoutingStore(Protocol):
    # -- agents
    def put_agent(
        self, aid: str, profile: Mapping[str, Any], now_ms: int
    ) -> tuple[bool, list[str]]: ...
    def set_status(self, aid: str, status: str, reason: str, now_ms: int) -> list[str]: ...
    def get_agent(self, aid: str) -> tuple[Agent, dict[str, str]]: ...
    def agent_hash(self, aid: str) -> dict[str, str]: ...
    def agents_after(self, after: str, limit: int) -> list[tuple[Agent, dict[str, str]]]: ...
    def candidates(
        self,
        req: Requirements,
        want: int,
        *,
        declined: Mapping[str, int],
        exclude: Iterable[str] = (),
        now_ms: int,
        max_scan: int = 1024,
    ) -> list[tuple[Agent, str]]: ...
    def available_counts(self, channels: Iterable[str]) -> dict[str, int]: ...
    def agent_totals(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]: ...

    # -- tasks
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
    ) -> tuple[bool, str | None, str | None, str | None]: ...
    def task_hash(self, tid: str) -> dict[str, str]: ...
    def tasks(self, ids: Sequence[str]) -> list[tuple[str, dict[str, str]]]: ...
    def queue_head(self, channel: str, limit: int, offset: int = 0) -> list[Task]: ...
    def queue_window(self, channel: str, limit: int, after: int = 0) -> list[Task]: ...
    def channels(self) -> list[str]: ...
    def last_agent(self, customer_id: str) -> str | None: ...
    def customer_task_ids(self, customer_id: str) -> list[str]: ...

    # -- transitions
    def reserve(
        self, tid: str, aid: str, rid: str, expires_ms: int, version: str, now_ms: int
    ) -> str: ...
    def accept(
        self,
        rid: str,
        sticky_memory_s: int,
        now_ms: int,
        cooloff_ms: int = 30_000,
        away_after: int = 3,
        as_agent: str | None = None,
    ) -> tuple[str, dict[str, str]]: ...
    def reject(
        self, rid: str, cooloff_ms: int, now_ms: int, as_agent: str | None = None
    ) -> tuple[str, dict[str, str]]: ...
    def complete(
        self, tid: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> tuple[str, str | None, int, dict[str, str]]: ...
    def cancel(
        self, tid: str, reason: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> tuple[str, str]: ...
    def erase_customer(self, customer_id: str, now_ms: int) -> list[str]: ...
    def mark_verified(
        self, customer_id: str, verification_id: str, now_ms: int, remember_s: int = 1800
    ) -> int: ...
    def rekey_customer(self, src: str, dst: str, unmerge: bool, now_ms: int) -> int: ...
    def tick(
        self,
        limit: int,
        cooloff_ms: int,
        away_after: int,
        lead_team: str,
        now_ms: int,
        lead_wait_ms: int = 600_000,
    ) -> list[str]: ...

    # -- reservations and statistics
    def reservation(self, rid: str) -> dict[str, str]: ...
    def pending_reservations(self, aid: str) -> list[tuple[str, dict[str, str]]]: ...
    def offer_cursor(self, aid: str) -> str: ...
    def wait_offer(self, aid: str, after: str, block_ms: int) -> str: ...
    def waiting(
        self, categories: Sequence[str], channels: Sequence[str]
    ) -> dict[tuple[str, str], tuple[int, int | None]]: ...
    def minute_buckets(self, minutes: Sequence[int]) -> list[dict[str, str]]: ...
