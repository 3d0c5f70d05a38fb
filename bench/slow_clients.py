"""verification-status under the slow-client attack (shared/trickle.py): the p99 an
IVR polling over a fresh connection each time sees while 200 connections trickle
headers and 20 trickle a body, beside the same polling without the attack, in the same
run. Target (API.md B): p99 <= 50 ms under attack."""

from __future__ import annotations

from collections.abc import Mapping

from bench.common import percentile
from shared.trickle import Trickle, poll

SECONDS = 10.0
HEADERS, BODIES = 200, 20


def status_under_trickle(
    url: str, port: int, headers: Mapping[str, str], body_headers: Mapping[str, str]
) -> dict[str, float]:
    """p50/p99 (ms) and failures of GET ``url`` without, then with, the attack on ``port``."""
    out: dict[str, float] = {}
    for label in ("baseline", "attack"):
        trickle = Trickle(
            "127.0.0.1", port, headers=HEADERS, bodies=BODIES, body_headers=dict(body_headers)
        )
        try:
            if label == "attack":
                trickle.start()
            polls = poll(url, dict(headers), SECONDS, timeout=2.0)
        finally:
            trickle.stop()
        ms = [p.seconds * 1000 for p in polls if p.status == 200]
        out[f"{label}_p50"] = percentile(ms, 50)
        out[f"{label}_p99"] = percentile(ms, 99)
        out[f"{label}_n"] = len(polls)
        out[f"{label}_failed"] = len(polls) - len(ms)
    return out


def row(result: Mapping[str, float]) -> list[object]:
    """The benchmark table's row: p99 under attack, the baseline's beside it."""
    return [
        f"verification-status p99 under {HEADERS} + {BODIES} trickling connections",
        f"{result['attack_n'] / SECONDS:,.0f} polls/s",
        f"baseline p99 {result['baseline_p99']:.2f}",
        f"{result['attack_p50']:.2f}",
        f"{result['attack_p99']:.2f}",
        "",
        int(result["attack_failed"] + result["baseline_failed"]),
    ]
