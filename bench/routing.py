"""Routing decision latency and throughput at 1k, 10k and 100k agents, beside the raw
Redis round trip measured in the same run.

- agents: random skills (50 skills, 3-6 each, levels 1-5), 5 languages (1-2 each),
  chat capacity 1-4 and voice 0-1; tasks need 1-2 skills at level 1-3 and a language.
- decision latency = task created -> reservation created (``create_task`` in a router
  process: requirements from the domain, then one Lua step that stores the task, scans
  the smallest idle index and reserves), at fixed offered rates, open loop from 2 router
  processes (latency counted from each task's scheduled arrival).
- sustained tasks/s routed end to end = create + reserve + accept + complete, 3 router
  processes, closed loop.
- HTTP: POST /v1/tasks under gunicorn (2 workers x 4 threads) with wrk, 10k agents.

Targets: p99 <= 10 ms at 500 tasks/s with 10k agents; >= 1,000 tasks/s sustained;
cost per decision sub-linear in agents.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis as redis_lib  # noqa: E402

from bench.common import (  # noqa: E402
    BENCH_KEYS,
    GunicornService,
    RedisServer,
    bench_env,
    http_load,
    machine,
    percentile,
    print_table,
)
from services.routing.adapters.redis.store import RedisRoutingStore  # noqa: E402
from services.routing.config import RoutingConfig  # noqa: E402
from services.routing.service import RoutingService  # noqa: E402

SKILLS = [f"s{i:02d}" for i in range(50)]
LANGS = ["zh", "en", "es", "fr", "de"]
RATES = (250, 500, 1000)
RATE_SECONDS = 3.0


def make_service(r: redis_lib.Redis) -> RoutingService:
    # Long reservation timeout: offers stay pending during a run, timers stay quiet.
    cfg = replace(RoutingConfig(), reservation_timeout_s=600)
    return RoutingService(RedisRoutingStore(r), cfg)


def seed_agents(svc: RoutingService, n: int, rng: random.Random) -> float:
    profiles = {}
    for i in range(n):
        profiles[f"a{i:06d}"] = {
            "skills": {s: rng.randint(1, 5) for s in rng.sample(SKILLS, rng.randint(3, 6))},
            "languages": rng.sample(LANGS, rng.randint(1, 2)),
            "channels": {"chat": rng.randint(1, 4), "voice": rng.randint(0, 1)},
            "team": None,
            "status": "available",
        }
    started = time.perf_counter()
    svc.store.put_agents(profiles, int(time.time() * 1000))
    elapsed = time.perf_counter() - started
    del profiles
    gc.collect()
    gc.freeze()  # the seed data is garbage: keep full collections out of the latencies
    return elapsed


def task_cmd(rng: random.Random, i: int) -> dict:
    return {
        "channel": "chat",
        "customer_id": f"c{i}-{rng.random()}",  # new customers: no sticky agent
        "category": rng.choice(["basic", "basic", "complex", "urgent"]),
        "skills": {s: rng.randint(1, 3) for s in rng.sample(SKILLS, rng.randint(1, 2))},
        "language": rng.choice(LANGS),
    }


def raw_round_trip(r: redis_lib.Redis) -> list[list[str]]:
    """The floor: one PING, and one trivial Lua script call, from this process."""
    script = r.register_script("return 1")
    rows = []
    for name, call in (("PING", r.ping), ("EVALSHA 'return 1'", lambda: script(keys=["k"]))):
        samples = []
        for _ in range(3000):
            t0 = time.perf_counter()
            call()
            samples.append((time.perf_counter() - t0) * 1000)
        rows.append([name, f"{percentile(samples, 50):.3f}", f"{percentile(samples, 99):.3f}"])
    return rows


def _offered_worker(
    url: str, rate: int, n: int, start_at: float, k: int, procs: int, seed: int, out: Any
) -> None:
    """Router process ``k`` of ``procs``: tasks k, k+procs, ... at their scheduled times."""
    svc = make_service(redis_lib.Redis.from_url(url, decode_responses=True))
    rng = random.Random(seed * 100 + k)
    mine = list(range(k, n, procs))
    cmds = {i: task_cmd(rng, i) for i in mine}
    lat: list[float] = []
    made: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(part: list[int]) -> None:
        local_lat, local_made = [], []
        for i in part:
            due = start_at + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            view = svc.create_task(cmds[i])
            local_lat.append((time.time() - due) * 1000)
            if view["status"] == "reserved":
                local_made.append((view["reservation_id"], view["task_id"]))
        with lock:
            lat.extend(local_lat)
            made.extend(local_made)

    threads = [threading.Thread(target=worker, args=(mine[j::2],)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = time.time()
    for rid, tid in made:  # the desktops answer after the run: capacity back for the next
        svc.accept(rid)
        svc.complete_task(tid)
    out.put((lat, len(made), ended))


def offered(url: str, rate: int, seconds: float, seed: int, procs: int = 2) -> dict:
    """Open loop at ``rate`` tasks/s from ``procs`` router processes (2 threads each);
    latency counted from each task's scheduled arrival."""
    n = int(rate * seconds)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.3  # every process is up before the first arrival
    ps = [
        ctx.Process(target=_offered_worker, args=(url, rate, n, start_at, k, procs, seed, out))
        for k in range(procs)
    ]
    for p in ps:
        p.start()
    results = [out.get() for _ in ps]
    for p in ps:
        p.join()
    lat = [x for r in results for x in r[0]]
    ended = max(r[2] for r in results)
    return {
        "n": n,
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "achieved": n / max(ended - start_at, 1e-9),
        "reserved": sum(r[1] for r in results) / n,
    }


def _sustained_worker(url: str, k: int, stop_at: float, out: Any) -> None:
    svc = make_service(redis_lib.Redis.from_url(url, decode_responses=True))
    local = random.Random(k)
    count, i = 0, k * 10_000_000
    while time.time() < stop_at:
        i += 1
        view = svc.create_task(task_cmd(local, i))
        if view["reservation_id"]:
            svc.accept(view["reservation_id"])
            svc.complete_task(view["task_id"])
            count += 1
    out.put(count)


def sustained(url: str, seconds: float, processes: int = 3) -> float:
    """Closed loop, several router processes: create (decide, reserve), accept, complete."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stop_at = time.time() + seconds
    started = time.perf_counter()
    procs = [
        ctx.Process(target=_sustained_worker, args=(url, k, stop_at, out)) for k in range(processes)
    ]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.perf_counter() - started)


def median_run(url: str, rate: int, seed: int, runs: int = 3) -> dict:
    results = sorted(
        (offered(url, rate, RATE_SECONDS, seed * 10 + j) for j in range(runs)),
        key=lambda r: r["p99"],
    )
    return results[len(results) // 2]


def main() -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            r = redis_lib.Redis.from_url(server.url, decode_responses=True)
            raw = raw_round_trip(r)
            rate_rows, scale_rows = [], []
            http_row = None
            for agents in (1_000, 10_000, 100_000):
                r.flushall()
                svc = make_service(r)
                seed_s = seed_agents(svc, agents, rng)
                e2e = sustained(server.url, 4.0)  # first, while every agent is free
                offered(server.url, 200, 1.0, 0)  # warm-up, not reported
                for rate in RATES if agents == 10_000 else (500,):
                    res = median_run(
                        server.url,
                        rate,
                        agents + rate,
                        runs=5 if (agents, rate) == (10_000, 500) else 3,
                    )
                    if agents == 10_000:
                        rate_rows.append(
                            [
                                f"{rate:,}",
                                f"{res['achieved']:,.0f}",
                                f"{res['p50']:.2f}",
                                f"{res['p99']:.2f}",
                                f"{res['reserved']:.0%}",
                            ]
                        )
                    if rate == 500:
                        scale_rows.append(
                            [
                                f"{agents:,}",
                                f"{seed_s:.1f}",
                                f"{res['p50']:.2f}",
                                f"{res['p99']:.2f}",
                                f"{e2e:,.0f}",
                            ]
                        )
                    r.delete("sb:rt:{default}:outbox")
                if agents == 10_000:
                    env = bench_env(server.url, str(Path(tmp) / "var"))
                    with GunicornService("services.routing.app:create_app()", env) as gs:
                        http_row = http_load(
                            gs.url + "/v1/tasks",
                            method="POST",
                            body=task_cmd(rng, 0),
                            headers={"Authorization": f"Bearer {BENCH_KEYS['channel']}"},
                            concurrency=16,
                            duration=5,
                        )
            print_table(
                "Baseline: raw Redis round trip from this process",
                ["call", "p50 ms", "p99 ms"],
                raw,
            )
            print_table(
                "Decision latency (task created -> reservation created), 10k agents, "
                f"open loop from 2 router processes, {RATE_SECONDS:.0f} s per run, "
                "median of 3 runs by p99 (5 at 500/s)",
                ["offered/s", "achieved/s", "p50 ms", "p99 ms", "reserved at once"],
                rate_rows,
            )
            print_table(
                "Cost against the number of agents (decisions at 500/s; sustained = create + "
                "reserve + accept + complete, 3 router processes, closed loop)",
                ["agents", "seed s", "p50 ms", "p99 ms", "sustained tasks/s"],
                scale_rows,
            )
            if http_row is not None:
                print_table(
                    "POST /v1/tasks under gunicorn (2 workers x 4 threads), 16 connections, "
                    "10k agents",
                    ["requests/s", "p50 ms", "p99 ms", "errors"],
                    [
                        [
                            f"{http_row.rps:,.0f}",
                            f"{http_row.p50_ms:.2f}",
                            f"{http_row.p99_ms:.2f}",
                            http_row.errors,
                        ]
                    ],
                )
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"{machine()}; load average at the end: {load}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
