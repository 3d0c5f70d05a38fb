"""N concurrent cross-channel journeys for a fixed time against the whole product
(three services under gunicorn in the layout `make run` and compose use, consumers,
dispatcher, real Redis, SQLite): journeys/s, per-step p50/p99, errors (must be 0).

Each worker drives its own customers end to end and has two agents with a skill
of its own, so its tasks are offered to its agents (the stickiness check of the
journey stays meaningful under load).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import BENCH_KEYS, machine, percentile, print_table  # noqa: E402
from scripts.journey import Endpoints, Journey  # noqa: E402
from shared.testing import Product  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    keys_env = ",".join(f"b-{s}:{k}:{s}" for s, k in BENCH_KEYS.items())
    with tempfile.TemporaryDirectory() as tmp:
        # As it ships: identity on 2 x cores + 1 sync workers, the others 2 x 4 gthread.
        product = Product(Path(tmp), keys_env, BENCH_KEYS["admin"], workers=None)
        try:
            errors = run(product, args.workers, args.seconds)
        finally:
            product.stop()
        if errors:
            # The product's own log says why (a worker that died, a port taken...).
            print("\nthe product's logs:\n" + product.log_tails())
            sys.exit(f"{len(errors)} journeys failed")


def run(product: Product, workers: int, seconds: float) -> list[str]:
    """Runs the journeys, prints the tables; returns the errors (must be none)."""
    endpoints = Endpoints(**product.urls, keys=dict(BENCH_KEYS))
    timings: dict[str, list[float]] = {}
    totals: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            journey = Journey(
                endpoints,
                client,
                agents=(f"bench-{index}-a", f"bench-{index}-b"),
                skill=f"bench_{index}",
                poll_timeout=30,
            )
            try:
                journey.prepare()
            except Exception as exc:  # noqa: BLE001 - a worker that cannot start is an error
                with lock:
                    errors.append(f"prepare: {type(exc).__name__}: {exc}"[:300])
                return
            while time.monotonic() < stop_at:
                journey.timings = {}
                started = time.perf_counter()
                try:
                    journey.run()
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    totals.append(elapsed)
                    for step, value in journey.timings.items():
                        timings.setdefault(step, []).append(value)

    began = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began

    print(f"machine: {machine()}\n")
    print_table(
        f"{workers} concurrent journeys for {seconds:.0f} s",
        ["journeys", "journeys/s", "journey p50 ms", "journey p99 ms", "errors"],
        [
            [
                len(totals),
                len(totals) / wall,
                percentile(totals, 50) * 1000,
                percentile(totals, 99) * 1000,
                len(errors),
            ]
        ],
    )
    print_table(
        "Per step (ms)",
        ["step", "p50", "p99"],
        [[step, percentile(v, 50) * 1000, percentile(v, 99) * 1000] for step, v in timings.items()],
    )
    if not totals and not errors:
        errors.append("no journey completed")
    for error in errors[:5]:
        print("error:", error)
    return errors


if __name__ == "__main__":
    main()
