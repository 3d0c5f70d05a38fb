"""Server-side cost of the routing scripts on a fixed workload: Redis time per call.

Seeds 10k agents as ``bench/routing.py`` does (same generator and seed), then runs
phases one after the other on a fresh redis-server and reads ``INFO commandstats``
before and after each: ``usec_per_call`` of EVALSHA is the time Redis spent in that
phase's script (index writes included), independent of the client's round trips.
The commands the scripts ran (ZADD, ZREM, ...) are counted per call too.

- seed: AGENT_PUT x agents (pipelined);
- create: TASK_CREATE (store the task, scan the idle index, reserve) x tasks;
- accept: ACCEPT x reserved;
- complete: COMPLETE (release the capacity) x accepted;
- create2: TASK_CREATE again (the agents now have varied loads);
- timeout: TICK firing every reservation's timeout (release, missed count) and the
  SLA timers of those tasks, 500 timers per call.

Run: ``.venv/bin/python bench/routing_scripts.py [agents] [tasks] [repeats]``.
"""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from bench.routing import SKILLS, task_cmd  # noqa: E402
from services.routing.adapters.redis.store import RedisRoutingStore  # noqa: E402
from services.routing.config import RoutingConfig  # noqa: E402
from services.routing.service import RoutingService  # noqa: E402
from shared.embedded_redis import RedisServer  # noqa: E402

COUNTED = ("evalsha", "zadd", "zrem", "hgetall", "hget", "hset", "zcard", "zrange")


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def stats(r: redis_lib.Redis) -> dict[str, Any]:
    info = r.info("commandstats")
    cpu = r.info("cpu")
    out: dict[str, Any] = {
        name: (
            info.get(f"cmdstat_{name}", {}).get("calls", 0),
            info.get(f"cmdstat_{name}", {}).get("usec", 0),
        )
        for name in COUNTED
    }
    out["cpu"] = float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
    return out


def profiles(n: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    langs = ["zh", "en", "es", "fr", "de"]
    return {
        f"a{i:06d}": {
            "skills": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(3, 6))},
            "languages": rng.sample(langs, rng.randint(1, 2)),
            "channels": {"chat": rng.randint(1, 4), "voice": rng.randint(0, 1)},
            "team": None,
            "status": "available",
        }
        for i in range(n)
    }


def run(url: str, agents: int, tasks: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    r = redis_lib.Redis.from_url(url, decode_responses=True)
    r.flushall()
    clock = Clock()
    cfg = replace(RoutingConfig(), reservation_timeout_s=600)
    svc = RoutingService(RedisRoutingStore(r), cfg, clock=clock)
    rng = random.Random(1)
    seeded = profiles(agents, rng)
    rows = []

    def phase(name: str, body: Any) -> Any:
        r.config_resetstat()
        before = stats(r)
        result = body()
        rows.append((name, before, stats(r)))
        return result

    assert isinstance(svc.store, RedisRoutingStore)
    phase("seed", lambda: svc.store.put_agents(seeded, clock()))

    def create() -> list[dict[str, Any]]:
        views = []
        for i in range(tasks):
            clock.ms += 1
            views.append(svc.create_task(task_cmd(rng, i)))
        return views

    def settle(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Cancel what found no agent (outside the measured phases)."""
        for v in views:
            if v["status"] == "queued":
                svc.cancel_task(v["task_id"], "bench")
        return [v for v in views if v["status"] == "reserved"]

    made = settle(phase("create", create))
    phase("accept", lambda: [svc.accept(v["reservation_id"]) for v in made])
    phase("complete", lambda: [svc.complete_task(v["task_id"]) for v in made])
    settle(phase("create2", create))

    timers = svc.store.key("timers")

    def timeout() -> None:
        clock.ms += 601_000
        while r.zcount(timers, "-inf", clock()):
            svc.store.tick(500, 30_000, 3, "team-lead", clock(), 600_000)

    phase("timeout", timeout)
    r.close()
    return rows


def main() -> None:
    agents = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 3_000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(tmp)
        try:
            runs = [run(server.url, agents, tasks) for _ in range(repeats)]
        finally:
            server.stop()
    print(f"{agents} agents, {tasks} tasks per create phase, {repeats} runs")
    print("phase     calls  usec/call (runs)            min   zadd/call zrem/call cpu s (min)")
    for i, (name, before, _after) in enumerate(runs[0]):
        per = []
        for rows in runs:
            b, a = rows[i][1], rows[i][2]
            calls = a["evalsha"][0] - b["evalsha"][0]
            per.append(
                (
                    calls,
                    (a["evalsha"][1] - b["evalsha"][1]) / max(calls, 1),
                    (a["zadd"][0] - b["zadd"][0]) / max(calls, 1),
                    (a["zrem"][0] - b["zrem"][0]) / max(calls, 1),
                    a["cpu"] - b["cpu"],
                )
            )
        del before
        us = " ".join(f"{p[1]:7.1f}" for p in per)
        print(
            f"{name:8} {per[0][0]:6d}  {us:27} {min(p[1] for p in per):7.1f} "
            f"{per[0][2]:9.1f} {per[0][3]:9.1f} {min(p[4] for p in per):6.2f}"
        )


if __name__ == "__main__":
    main()
