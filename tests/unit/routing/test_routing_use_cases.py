"""The task-creation use case with a recording fake of the store port: which fields,
timers and requirements it hands to the atomic step (no Redis here; the adapter is
tested against a real server in tests/integration/routing)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.domain.matching import RelaxationStep
from services.routing.domain.model import Requirements
from services.routing.service import RoutingService

NOW = 1_800_000_000_000


class RecordingStore:
    """Records create_task; reports that no agent was free."""

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}
        self.candidate_reads = 0

    def create_task(
        self,
        tid,
        fields,
        timers,
        escalated,
        now_ms,
        sticky_timeout_ms=20_000,
        route=None,
        offer=None,
        retention_s=7 * 86400,
    ):  # type: ignore[no-untyped-def]
        self.created = {
            "tid": tid,
            "fields": dict(fields),
            "timers": dict(timers),
            "escalated": escalated,
            "route": route,
            "offer": offer,
        }
        return True, None, None, None

    def candidates(self, req, want, *, declined, exclude=(), now_ms, max_scan=1024):  # type: ignore[no-untyped-def]
        self.candidate_reads += 1
        return []

    def agent_hash(self, aid: str) -> dict[str, str]:
        return {}


def service(**config: Any) -> tuple[RoutingService, RecordingStore]:
    store = RecordingStore()
    cfg = replace(RoutingConfig(), **config)
    return RoutingService(store, cfg, clock=lambda: NOW), store  # type: ignore[arg-type]


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
