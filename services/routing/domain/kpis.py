"""First response time per category, folded from routing.task.assigned events.

The field's pain: first response takes 25 minutes against a 15-minute
benchmark. Each assignment adds its wait (task created -> agent accepted) to
a histogram of its category; the summary gives count, average, p50/p90 read
off the histogram, and the share answered within the category's SLA target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Upper bounds (seconds) of the wait histogram; the last bucket is open.
BOUNDS: tuple[float, ...] = (5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
FIELD_BENCHMARK_SECONDS = 900  # the 15-minute first-response benchmark


def bucket_of(seconds: float) -> str:
    for bound in BOUNDS:
        if seconds <= bound:
            return f"le{bound:g}"
    return "inf"


def assigned_counters(data: Mapping[str, Any], sla_targets: Mapping[str, float]) -> dict[str, int]:
    """What one routing.task.assigned adds to the counters."""
    category = str(data.get("category", "unknown"))
    waited_ms = max(0, int(data.get("waited_ms", 0)))
    seconds = waited_ms / 1000
    counters = {
        f"answered:{category}": 1,
        f"wait_ms:{category}": waited_ms,
        f"hist:{category}:{bucket_of(seconds)}": 1,
    }
    target = sla_targets.get(category)
    if target is not None and seconds <= target:
        counters[f"within_sla:{category}"] = 1
    if seconds <= FIELD_BENCHMARK_SECONDS:
        counters[f"within_benchmark:{category}"] = 1
    return counters


def _quantile(histogram: Mapping[str, int], total: int, q: float) -> float | None:
    """Upper bound of the bucket holding the q-quantile (a conservative estimate)."""
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bound in BOUNDS:
        seen += histogram.get(f"le{bound:g}", 0)
        if seen >= rank:
            return float(bound)
    return None  # beyond the last bound: over an hour


def first_response(
    counters: Mapping[str, int], categories: list[str], sla_targets: Mapping[str, float]
) -> list[dict[str, Any]]:
    out = []
    for category in categories:
        answered = counters.get(f"answered:{category}", 0)
        histogram = {
            name.split(":", 2)[2]: value
            for name, value in counters.items()
            if name.startswith(f"hist:{category}:")
        }
        out.append(
            {
                "category": category,
                "answered": answered,
                "average_seconds": (
                    round(counters.get(f"wait_ms:{category}", 0) / answered / 1000, 3)
                    if answered
                    else None
                ),
                "p50_seconds_at_most": _quantile(histogram, answered, 0.5),
                "p90_seconds_at_most": _quantile(histogram, answered, 0.9),
                "within_sla": (
                    round(counters.get(f"within_sla:{category}", 0) / answered, 4)
                    if answered
                    else None
                ),
                "sla_target_seconds": sla_targets.get(category),
                "within_field_benchmark": (
                    round(counters.get(f"within_benchmark:{category}", 0) / answered, 4)
                    if answered
                    else None
                ),
            }
        )
    return out
