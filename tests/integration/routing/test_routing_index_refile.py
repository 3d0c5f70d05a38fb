"""The candidate indexes kept incrementally equal the ones a full re-filing builds.

Reserve, release and status changes re-file an agent only in the indexes whose
membership or score changes (``refile`` in ``adapters/redis/lua/prelude.lua``); ``REINDEX`` files
every agent from scratch in every index its state calls for. After any sequence of
transitions the two must agree, member for member and score for score.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.domain.model import InvalidTransition, NotFound
from services.routing.service import RoutingService

from .conftest import Clock, events

PREFIX = "sb:rt:{default}:"
AGENTS = [f"a{i}" for i in range(14)]
SKILLS = ("billing", "returns", "loans")
LANGS = ("en", "fr", "zh")
CHANNELS = ("chat", "voice", "email")


def _indexes(redis: Any) -> dict[str, dict[str, float]]:
    out = {}
    for pattern in ("idx:*", "tidx:*"):
        for key in redis.scan_iter(PREFIX + pattern, count=1000):
            members = dict(redis.zrange(key, 0, -1, withscores=True))
            if members:
                out[key] = members
    return out


def _rebuilt(redis: Any, store: RedisRoutingStore, now_ms: int) -> dict[str, dict[str, float]]:
    """The indexes as a full re-filing of every agent builds them from nothing."""
    keys = [k for p in ("idx:*", "tidx:*") for k in redis.scan_iter(PREFIX + p, count=1000)]
    if keys:
        redis.delete(*keys)
    store.reindex_agents(now_ms, batch=5)
    return _indexes(redis)


def _profile(rng: random.Random) -> dict[str, Any]:
    return {
        "name": "x",
        "skills": {s: rng.randint(1, 5) for s in SKILLS if rng.random() < 0.6},
        "languages": rng.sample(LANGS, rng.randint(1, 2)),
        "channels": {ch: rng.randint(0, 3) for ch in CHANNELS if rng.random() < 0.7},
        "team": rng.choice([None, "senior", "general", "team-lead"]),
        "status": rng.choice(["available", "available", "available", "away", "offline"]),
    }


def _task(rng: random.Random, clock: Clock) -> dict[str, Any]:
    clock.advance(0.001)
    return {
        "channel": rng.choice(CHANNELS),
        "customer_id": f"c{rng.randint(1, 6)}",  # repeat customers: sticky agents
        "category": rng.choice(["basic", "complex", "urgent"]),
        "skills": {s: rng.randint(1, 4) for s in SKILLS if rng.random() < 0.3},
        "language": rng.choice([None, *LANGS]),
        "sentiment": rng.choice([None, 0.2, -0.8]),  # -0.8: a senior-team requirement
    }


def test_incremental_index_updates_equal_a_full_reindex_after_random_transitions(
    make_service: Callable[..., RoutingService], clock: Clock, redis: Any
) -> None:
    # Two routers on one pool: the create step's own decision, and the optimistic
    # candidates + reserve path of a non-default strategy; offers time out after 20 s.
    routers = [make_service(), make_service(strategy_name="best_fit")]
    store = routers[0].store
    assert isinstance(store, RedisRoutingStore)
    rng = random.Random(20261130)
    for aid in AGENTS:
        routers[0].put_agent(aid, _profile(rng))
        clock.advance(0.01)
    # the sweep visits the channels where some agent was ever indexed
    filed = {ch for ch in CHANNELS if redis.exists(f"{PREFIX}idx:{ch}:*:*")}
    assert filed and redis.smembers(PREFIX + "channels") == filed
    tasks: list[str] = []
    assigned: list[str] = []
    seen = {"reserve": 0, "release": 0, "status": 0, "profile": 0, "timers": 0}
    indexed = 0

    def step(svc: RoutingService) -> None:
        op = rng.random()
        if op < 0.3:
            view = svc.create_task(_task(rng, clock))
            tasks.append(view["task_id"])
            seen["reserve"] += view["status"] == "reserved"
        elif op < 0.45:
            # an offer of the create step, of a freed agent or of a timer's retry
            pending = [r["reservation_id"] for a in AGENTS for r in svc.reservations_of(a)]
            if pending and rng.random() < 0.8:
                assigned.append(svc.accept(rng.choice(pending))["task_id"])
            elif pending:
                svc.reject(rng.choice(pending))
        elif op < 0.6 and assigned:
            svc.complete_task(assigned.pop(rng.randrange(len(assigned))))
            seen["release"] += 1
        elif op < 0.65 and tasks:
            svc.cancel_task(rng.choice(tasks[-20:]), "abandoned")
        elif op < 0.78:
            status = rng.choice(["available"] * 4 + ["away", "offline"])
            svc.set_agent_status(rng.choice(AGENTS), status)
            seen["status"] += 1
        elif op < 0.82:
            svc.put_agent(rng.choice(AGENTS), _profile(rng))
            seen["profile"] += 1
        elif op < 0.85:
            svc.erase_customer(f"c{rng.randint(1, 6)}")
        else:
            clock.advance(rng.choice([0.5, 5, 5, 25]))  # 25 s: pending offers time out
            seen["timers"] += svc.tick()
            svc.sweep()

    for n in range(600):
        try:
            step(routers[n % 2])
        except (InvalidTransition, NotFound):
            pass  # a transition the task or offer is past: nothing changed
        if n % 10 == 9:
            kept = _indexes(redis)
            indexed += sum(len(kept.get(f"{PREFIX}idx:{ch}:*:*", {})) for ch in CHANNELS)
            assert _rebuilt(redis, store, clock()) == kept, f"after step {n}"
    # the sequence went through what it is meant to test
    seen["away_after_missed_offers"] = sum(
        e["reason"] == "missed_offers" for e in events(redis, type_prefix="routing.agent.status")
    )
    assert indexed > 300 and all(v > 2 for v in seen.values()), (indexed, seen)
