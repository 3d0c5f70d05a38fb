"""The task-creation use case with a recording fake of the store port: which fields,
timers and requirements it hands to the atomic step (no Redis here; the adapter is
tested against a real server in tests/integration/routing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest

from services.routing.agents import AgentUseCases
from services.routing.config import RoutingConfig
from services.routing.domain.matching import RelaxationStep
from services.routing.domain.model import Agent, InvalidTransition, NotFound, Requirements, Task
from services.routing.domain.state import (
    AgentChange,
    AgentRecord,
    Creation,
    Outcome,
    ReserveOutcome,
    Step,
    TaskRecord,
)
from services.routing.offering import Offering
from services.routing.ports import AgentStore, TaskStore
from services.routing.tasks import TaskUseCases

NOW = 1_800_000_000_000


class RecordingStore(TaskStore, AgentStore):
    """The task and agent ports, in memory: records create_task; no agent is free unless
    ``free`` holds one; ``refuse`` makes complete and cancel refuse from that state."""

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}
        self.candidate_reads = 0
        self.free: list[AgentRecord] = []
        self.reserved: list[tuple[str, str]] = []
        self.refuse: str | None = None

    # -- TaskStore
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
    ) -> Creation:
        self.created = {
            "tid": tid,
            "fields": dict(fields),
            "timers": dict(timers),
            "escalated": escalated,
            "route": route,
            "offer": offer,
        }
        return Creation(created=True)

    def task(self, tid: str) -> TaskRecord | None:
        return None

    def queue_head(self, channel: str, limit: int, offset: int = 0) -> list[Task]:
        return []

    def queue_window(self, channel: str, limit: int, after: int = 0) -> list[Task]:
        return []

    def channels(self) -> list[str]:
        return []

    def reserve(
        self, tid: str, aid: str, rid: str, expires_ms: int, version: str, now_ms: int
    ) -> ReserveOutcome:
        self.reserved.append((tid, aid))
        return ReserveOutcome.OK

    def complete(
        self, tid: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step:
        if self.refuse:
            return Step(Outcome.REFUSED, state=self.refuse)
        return Step(Outcome.MISSING)

    def cancel(
        self, tid: str, reason: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step:
        return self.complete(tid, retention_s, now_ms, as_agent)

    def tick(
        self,
        limit: int,
        cooloff_ms: int,
        away_after: int,
        lead_team: str,
        now_ms: int,
        lead_wait_ms: int = 600_000,
    ) -> list[str]:
        return []

    # -- AgentStore
    def put_agent(self, aid: str, profile: Mapping[str, Any], now_ms: int) -> AgentChange:
        return AgentChange(created=True)

    def set_status(self, aid: str, status: str, reason: str, now_ms: int) -> AgentChange | None:
        return None

    def agent(self, aid: str) -> AgentRecord | None:
        return None

    def agents_after(self, after: str, limit: int) -> list[AgentRecord]:
        return []

    def candidates(
        self,
        req: Requirements,
        want: int,
        *,
        declined: Mapping[str, int],
        exclude: Iterable[str] = (),
        now_ms: int,
        max_scan: int = 1024,
    ) -> list[AgentRecord]:
        self.candidate_reads += 1
        return [a for a in self.free if a.id not in set(exclude)][:want]

    def available_counts(self, channels: Iterable[str]) -> dict[str, int]:
        return {}

    def reindex_agents(self, now_ms: int, batch: int = 500) -> int:
        return 0


def service(**config: Any) -> tuple[TaskUseCases, RecordingStore]:
    store = RecordingStore()
    cfg = replace(RoutingConfig(), **config)
    offering = Offering(store, store, cfg, lambda: NOW)
    return TaskUseCases(store, offering, cfg, lambda: NOW), store


CMD = {
    "channel": "chat",
    "customer_id": "c-1",
    "category": "basic",
    "skills": {"billing": 3},
    "language": "zh",
}


def test_a_task_gets_its_sla_and_team_lead_timers() -> None:
    svc, store = service()
    view = svc.create_task(CMD)
    timers = store.created["timers"]
    assert timers[f"sla|{view['task_id']}"] == NOW + 60_000
    assert timers[f"lead|{view['task_id']}"] == NOW + 7_200_000
    assert view["status"] == "queued" and view["sla_due_at"] == "2027-01-15T08:01:00.000Z"


def test_the_default_strategy_decides_inside_the_create_step() -> None:
    svc, store = service()
    svc.create_task(CMD)
    assert store.created["route"] == Requirements("chat", {"billing": 3}, "zh")
    assert store.created["offer"][1] == NOW + 20_000
    assert store.candidate_reads == 0


def test_another_strategy_lets_the_domain_choose_from_candidates() -> None:
    svc, store = service(strategy_name="best_fit")
    svc.create_task(CMD)
    assert store.created["route"] is None and store.candidate_reads == 1


def test_negative_sentiment_requires_the_senior_team_for_a_while() -> None:
    svc, store = service()
    view = svc.create_task({**CMD, "sentiment": -0.9})
    fields, timers = store.created["fields"], store.created["timers"]
    assert store.created["escalated"] and fields["team"] == "senior"
    assert fields["team_until"] == NOW + 60_000
    assert timers[f"relax|{view['task_id']}|0"] == NOW + 60_000
    assert store.created["route"].team == "senior"
    assert view["priority"] > svc.config.priority.priority("basic", None, None)


def test_each_relaxation_step_arms_a_retry_timer() -> None:
    steps = (RelaxationStep(30, lower_levels_by=1), RelaxationStep(90, widen_language=True))
    svc, store = service(relaxation=steps)
    view = svc.create_task(CMD)
    tid = view["task_id"]
    assert store.created["timers"][f"relax|{tid}|0"] == NOW + 30_000
    assert store.created["timers"][f"relax|{tid}|1"] == NOW + 90_000


def test_another_strategy_offers_the_task_to_the_agent_the_domain_chose() -> None:
    svc, store = service(strategy_name="best_fit")
    able = Agent("a1", {"billing": 3}, frozenset({"zh"}), {"chat": 1}, status="available")
    store.free = [AgentRecord(able, "A", "1")]
    view = svc.create_task(CMD)
    assert store.reserved == [(view["task_id"], "a1")]
    assert (view["status"], view["agent_id"]) == ("reserved", "a1")


def test_a_refused_completion_names_the_state_the_table_forbids_it_from() -> None:
    svc, store = service()
    store.refuse = "queued"
    with pytest.raises(InvalidTransition, match="^the task is queued$"):
        svc.complete_task("t_1")
    store.refuse = None
    with pytest.raises(NotFound, match="^no task t_1$"):
        svc.cancel_task("t_1", "hung up")


def test_a_status_for_an_unknown_agent_is_not_found() -> None:
    svc, store = service()
    agents = AgentUseCases(store, svc.offering, lambda: NOW)
    with pytest.raises(NotFound, match="^no agent ghost$"):
        agents.set_agent_status("ghost", "available")
