"""A discrete-time simulation of a mixed load: ordering by urgency score keeps every
basic contact within its 60 s target while capacity exists, where strict priority
(urgent > complex > basic) lets a burst of complex cases starve them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from services.routing.domain.matching import choose_task
from services.routing.domain.model import Agent, Task
from services.routing.domain.priority import PriorityPolicy

POLICY = PriorityPolicy()
AGENTS = 10
RANK = {"urgent": 0, "complex": 1, "basic": 2}


def by_score(task: Task) -> tuple:
    return (POLICY.order_key(task.category, task.tier, task.sentiment, task.sla_due_ms), task.id)


def by_strict_priority(task: Task) -> tuple:
    return (RANK[task.category], task.created_ms, task.id)


def simulate(seed: int, order: Callable[[Task], tuple], seconds: int = 1800) -> dict[str, list]:
    """One-second steps; 10 agents of capacity 1; ~70% base load plus a complex burst."""
    rng = random.Random(seed)
    agents = {f"a{i}": 0 for i in range(AGENTS)}  # agent -> busy until (s)
    waiting: list[Task] = []
    waits: dict[str, list[int]] = {"basic": [], "complex": [], "urgent": []}
    n = 0
    for now in range(seconds):
        arrivals = 1 if rng.random() < 0.175 else 0  # 0.175/s x 40 s / 10 agents = 70%
        burst = 30 if now == 300 else 0  # a mass incident: 30 complex cases at once
        for i in range(arrivals + burst):
            category = "complex" if i >= arrivals else rng.choice(["basic"] * 6 + ["urgent"] * 2)
            tier = "vip" if rng.random() < 0.1 else None
            n += 1
            created = now * 1000
            waiting.append(
                Task(
                    f"t{n:05d}",
                    channel="chat",
                    customer_id="c",
                    category=category,
                    tier=tier,
                    sentiment=rng.uniform(-0.4, 1.0),
                    created_ms=created,
                    sla_due_ms=POLICY.sla_due_ms(category, created),
                )
            )
        waiting.sort(key=order)
        for aid, busy_until in agents.items():
            if busy_until > now or not waiting:
                continue
            me = Agent(aid, capacity={"chat": 1}, status="available")
            task = choose_task(me, waiting, now_ms=now * 1000)
            assert task is not None
            waiting.remove(task)
            waits[task.category].append(now - task.created_ms // 1000)
            agents[aid] = now + rng.randint(20, 60)
    return waits


@pytest.mark.parametrize("seed", range(5))
def test_no_basic_task_misses_its_sla_while_capacity_exists(seed: int) -> None:
    waits = simulate(seed, by_score)
    assert len(waits["basic"]) > 100
    assert max(waits["basic"]) <= 60
    assert max(waits["urgent"]) <= 300
    assert max(waits["complex"]) <= 1800


@pytest.mark.parametrize("seed", range(5))
def test_strict_priority_starves_basic_contacts_under_the_same_load(seed: int) -> None:
    waits = simulate(seed, by_strict_priority)
    assert max(waits["basic"]) > 60


def test_a_task_keeps_its_place_when_requeued() -> None:
    t = Task("t", channel="chat", customer_id="c", created_ms=5, sla_due_ms=60_005)
    assert by_score(replace(t, status="reserved")) == by_score(t)
