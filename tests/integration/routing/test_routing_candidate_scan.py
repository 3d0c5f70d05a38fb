"""Never lose a task: an eligible idle agent is found, however deep the candidate index.

Each scenario reproduces a way a task used to wait forever next to an idle agent
that could serve it (head-of-line blocking in the queue, an eligible agent beyond
the bounded candidate scan, a team-lead requirement nobody can meet).
"""

from __future__ import annotations

import random
from typing import Any

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.domain.matching import is_eligible
from services.routing.domain.model import Requirements
from services.routing.service import RoutingService

from .conftest import Clock


def _task(service: RoutingService, clock: Clock, language: str, **kw: Any) -> dict[str, Any]:
    clock.advance(0.001)  # distinct creation times: a stable queue order
    cmd = {"channel": "chat", "customer_id": "c-1", "category": "basic", "language": language}
    return service.create_task({**cmd, **kw})


def _seed_idle(service: RoutingService, clock: Clock, n: int, **profile: Any) -> None:
    base = {"skills": {}, "languages": ["en"], "channels": {"chat": 1}, "status": "available"}
    agents = {f"x{i:05d}": {"name": f"x{i}", **base, **profile} for i in range(n)}
    assert isinstance(service.store, RedisRoutingStore)
    service.store.put_agents(agents, clock())
    clock.advance(1)  # the agent added next is idle for less time than these


def test_a_level_5_agent_behind_1100_level_1_agents_gets_the_task(
    service: RoutingService, clock: Clock
) -> None:
    _seed_idle(service, clock, 1100, skills={"billing": 1})
    service.put_agent(
        "expert",
        {
            "name": "expert",
            "skills": {"billing": 5},
            "languages": ["en"],
            "channels": {"chat": 1},
            "status": "available",
        },
    )
    view = _task(service, clock, "en", skills={"billing": 5})
    assert (view["status"], view["agent_id"]) == ("reserved", "expert")


def test_a_senior_agent_behind_1100_other_agents_gets_the_escalated_task(
    service: RoutingService, clock: Clock
) -> None:
    _seed_idle(service, clock, 1100, team="general")
    service.put_agent(
        "senior1",
        {
            "name": "senior1",
            "team": "senior",
            "skills": {},
            "languages": ["en"],
            "channels": {"chat": 1},
            "status": "available",
        },
    )
    view = _task(service, clock, "en", sentiment=-0.9)
    assert view["team"] == "senior"
    assert (view["status"], view["agent_id"]) == ("reserved", "senior1")


def test_the_server_side_scan_agrees_with_the_domain(service: RoutingService, clock: Clock) -> None:
    """The Lua twin of is_eligible, through every index it may pick, on random agents."""
    rng = random.Random(7)
    store = service.store
    assert isinstance(store, RedisRoutingStore)
    for i in range(80):
        skills = {s: rng.randint(1, 5) for s in ("billing", "returns") if rng.random() < 0.7}
        profile = {
            "name": f"a{i}",
            "skills": skills,
            "languages": rng.sample(["en", "fr", "zh"], rng.randint(1, 2)),
            "channels": {ch: 1 for ch in ("chat", "voice") if rng.random() < 0.7},
            "team": rng.choice([None, "senior", "general"]),
            "status": rng.choice(["available", "available", "away"]),
        }
        store.put_agent(f"a{i}", profile, clock())
        clock.advance(0.001)
    agents = [r.agent for r in store.agents_after("", 1000)]
    for _ in range(60):
        req = Requirements(
            channel=rng.choice(["chat", "voice"]),
            skills={s: rng.randint(1, 5) for s in ("billing", "returns") if rng.random() < 0.5},
            language=rng.choice([None, "en", "fr", "zh"]),
            team=rng.choice([None, None, "senior", "general"]),
        )
        found = store.candidates(req, 1000, declined={}, now_ms=clock())
        expected = {a.id for a in agents if is_eligible(a, req)}
        assert {r.id for r in found} == expected, req


def test_the_level_and_team_indexes_follow_load_and_profile_changes(
    service: RoutingService, clock: Clock, redis: Any
) -> None:
    profile = {"name": "x", "skills": {"billing": 5}, "languages": ["en"], "team": "senior"}
    service.put_agent("x", {**profile, "channels": {"chat": 1}, "status": "available"})
    first = _task(service, clock, "en", skills={"billing": 5})
    assert first["agent_id"] == "x"
    second = _task(service, clock, "en", skills={"billing": 4})
    assert second["status"] == "queued"  # x is full: out of every index
    service.accept(first["reservation_id"])
    service.complete_task(first["task_id"])
    assert service.task_view(second["task_id"])["agent_id"] == "x"  # back in them
    # a lower level and another team take the agent out of the indexes it left
    service.put_agent(
        "x", {**profile, "skills": {"billing": 2}, "team": "general", "channels": {"chat": 2}}
    )
    prefix = "sb:rt:{default}:"
    assert redis.zscore(prefix + "idx:chat:en:billing:2", "x") is not None
    assert redis.zscore(prefix + "idx:chat:en:billing:3", "x") is None
    assert redis.zscore(prefix + "tidx:chat:senior:en", "x") is None
    third = _task(service, clock, "en", skills={"billing": 3})
    assert third["status"] == "queued"


def test_the_backfill_files_agents_indexed_before_the_level_indexes(
    service: RoutingService, clock: Clock, redis: Any
) -> None:
    service.put_agent(
        "old",
        {
            "name": "old",
            "skills": {"billing": 5},
            "languages": ["en"],
            "team": "senior",
            "channels": {"chat": 1},
            "status": "available",
        },
    )
    prefix = "sb:rt:{default}:"
    stale = [prefix + "idx:chat:en:billing:5", prefix + "tidx:chat:senior:*"]
    redis.delete(*stale)  # as filed by the previous layout
    store = service.store
    assert isinstance(store, RedisRoutingStore)
    assert store.reindex_agents(clock(), batch=1) == 1
    assert all(redis.zscore(k, "old") is not None for k in stale)
    assert _task(service, clock, "en", skills={"billing": 5})["agent_id"] == "old"
