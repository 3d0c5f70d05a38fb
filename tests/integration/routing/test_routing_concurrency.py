"""Four router processes, a burst of 1,000 tasks, 50 agents of chat capacity 3 accepting
and rejecting at random: checked from the event log alone - no task assigned twice,
no agent ever over capacity, every task assigned (and here completed) or still queued."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from typing import Any

import pytest

from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.service import RoutingService
from shared.testing import ROOT

ROUTERS = 4
TASKS_PER_ROUTER = 250
AGENTS = 50
CAPACITY = 3
STALL = 180.0

# One router process: a burst of task creations, then it plays agent desktops
# (accept 70% / reject 30% of the offers it sees, complete assigned work) and runs
# the dispatcher's timers and sweep - four of these race on every transition. It runs
# until its tasks are completed, however long a busy machine makes that; it gives up
# only when none of them completed for STALL seconds (stuck, not slow).
ROUTER = r"""
import random, sys, time
from dataclasses import replace
import redis
from services.routing.adapters.redis.store import RedisRoutingStore
from services.routing.config import RoutingConfig
from services.routing.domain.model import RoutingError
from services.routing.service import RoutingService

url, seed, n_tasks, n_agents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
stall = float(sys.argv[5])
rng = random.Random(seed)
r = redis.Redis.from_url(url, decode_responses=True)
cfg = replace(RoutingConfig(), reservation_timeout_s=1.0, decline_cooloff_s=0.2)
svc = RoutingService(RedisRoutingStore(r), cfg)
mine = []
for i in range(n_tasks):
    view = svc.create_task({"channel": "chat", "customer_id": f"c{seed}-{i}",
                            "category": rng.choice(["basic", "complex", "urgent"]),
                            "skills": {"billing": rng.randint(1, 3)}, "language": "zh"})
    mine.append(view["task_id"])
done, progressed = 0, time.monotonic()
while True:
    pipe = r.pipeline(transaction=False)
    for t in mine:
        pipe.hget(f"sb:rt:{{default}}:task:{t}", "status")
    completed = sum(s == "completed" for s in pipe.execute())
    if completed == len(mine):
        break
    if completed > done:
        done, progressed = completed, time.monotonic()
    elif time.monotonic() - progressed > stall:
        sys.exit(f"router {seed}: {completed} of {len(mine)} completed, none more in {stall} s")
    for aid in rng.sample(range(n_agents), 10):
        agent = f"a{aid:02d}"
        for res in svc.reservations_of(agent):
            try:
                if rng.random() < 0.7:
                    svc.accept(res["reservation_id"])
                else:
                    svc.reject(res["reservation_id"])
            except RoutingError:
                pass  # another router answered it first, or it timed out
    for tid in rng.sample(mine, 25):
        if r.hget(f"sb:rt:{{default}}:task:{tid}", "status") == "assigned":
            try:
                svc.complete_task(tid)
            except RoutingError:
                pass
    svc.tick()
    svc.sweep()
"""


def outbox(redis: Any) -> list[dict[str, Any]]:
    return [
        {"type": f["type"], "id": f["id"], **json.loads(f["data"])}
        for _, f in redis.xrange("sb:rt:{default}:outbox")
    ]


@pytest.mark.timeout(1800)  # a loaded machine is slow; a stuck router exits on its own
def test_four_routers_never_double_assign_nor_exceed_capacity(redis: Any, redis_url: str) -> None:
    cfg = replace(RoutingConfig(), reservation_timeout_s=1.0)
    setup = RoutingService(RedisRoutingStore(redis), cfg)
    for i in range(AGENTS):
        setup.put_agent(
            f"a{i:02d}",
            {
                "skills": {"billing": 3 + i % 3},
                "languages": ["zh"],
                "channels": {"chat": CAPACITY},
                "status": "available",
            },
        )
    routers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                ROUTER,
                redis_url,
                str(seed),
                str(TASKS_PER_ROUTER),
                str(AGENTS),
                str(STALL),
            ],
            cwd=ROOT,
        )
        for seed in range(ROUTERS)
    ]
    assert [p.wait(1500) for p in routers] == [0] * ROUTERS

    events = outbox(redis)
    assert len({e["id"] for e in events}) == len(events)
    created = [e["task_id"] for e in events if e["type"] == "routing.task.created"]
    assert len(created) == len(set(created)) == ROUTERS * TASKS_PER_ROUTER

    assigned = Counter(e["task_id"] for e in events if e["type"] == "routing.task.assigned")
    assert max(assigned.values()) == 1, "a task was assigned twice"

    load: dict[str, int] = defaultdict(int)
    holder: dict[str, str] = {}  # task -> agent holding its pending offer
    offers = Counter()
    for e in events:
        kind = e["type"]
        if kind == "routing.reservation.created":
            assert e["task_id"] not in holder, "a task offered to two agents at once"
            holder[e["task_id"]] = e["agent_id"]
            load[e["agent_id"]] += 1
            offers[e["agent_id"]] += 1
            assert load[e["agent_id"]] <= CAPACITY, "capacity exceeded"
        elif kind in (
            "routing.reservation.rejected",
            "routing.reservation.timeout",
            "routing.reservation.canceled",
        ):
            assert holder.pop(e["task_id"]) == e["agent_id"]
            load[e["agent_id"]] -= 1
        elif kind == "routing.reservation.accepted":
            assert holder.pop(e["task_id"]) == e["agent_id"]
        elif kind == "routing.task.completed":
            load[e["agent_id"]] -= 1
        assert min(load.values(), default=0) >= 0

    final = Counter(redis.hget(f"sb:rt:{{default}}:task:{t}", "status") for t in created)
    assert set(final) <= {"completed", "assigned", "queued", "reserved"}
    assert final["completed"] == len(created), final
    assert sum(1 for e in events if e["type"] == "routing.reservation.rejected") > 50
    assert setup.agent_totals()["busy_slots"].get("chat", 0) == sum(load.values()) == 0
    assert len(offers) == AGENTS  # the work spread over every agent
