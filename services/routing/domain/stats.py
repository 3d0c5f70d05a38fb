"""Queue statistics from incrementally kept counters.

The store keeps, per minute bucket and per (category, channel): tasks
answered, answered within their SLA, and the sum of their waits. A report
sums the last 60 buckets - no scan of tasks, ever.

    service_level = answered_within_sla / answered        (None when nothing was answered)
    average_speed_of_answer = sum(wait_ms) / answered / 1000   seconds
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WINDOW_MINUTES = 60


def minute_of(now_ms: int) -> int:
    return now_ms // 60_000


def window_minutes(now_ms: int, minutes: int = WINDOW_MINUTES) -> list[int]:
    """The bucket numbers of the last ``minutes`` minutes, the current one included."""
    current = minute_of(now_ms)
    return [current - i for i in range(minutes)]


@dataclass(frozen=True)
class AnswerTotals:
    answered: int = 0
    within_sla: int = 0
    wait_ms: int = 0

    def __add__(self, other: AnswerTotals) -> AnswerTotals:
        return AnswerTotals(
            self.answered + other.answered,
            self.within_sla + other.within_sla,
            self.wait_ms + other.wait_ms,
        )

    @property
    def service_level(self) -> float | None:
        return round(self.within_sla / self.answered, 4) if self.answered else None

    @property
    def average_speed_of_answer(self) -> float | None:
        return round(self.wait_ms / self.answered / 1000, 3) if self.answered else None


def sum_buckets(
    buckets: Iterable[Mapping[str, str | int]],
) -> dict[tuple[str, str], AnswerTotals]:
    """Buckets map ``"<category>|<channel>|<counter>"`` to a count; totals per (cat, channel)."""
    totals: dict[tuple[str, str], AnswerTotals] = {}
    for bucket in buckets:
        for name, raw in bucket.items():
            parts = name.split("|")
            if len(parts) != 3:
                continue
            category, channel, counter = parts
            value = int(raw)
            add = AnswerTotals(
                answered=value if counter == "answered" else 0,
                within_sla=value if counter == "within" else 0,
                wait_ms=value if counter == "wait_ms" else 0,
            )
            key = (category, channel)
            totals[key] = totals.get(key, AnswerTotals()) + add
    return totals


def answer_counters(
    category: str, channel: str, waited_ms: int, within_sla: bool
) -> dict[str, int]:
    """The increments one answered task adds to its minute bucket."""
    prefix = f"{category}|{channel}|"
    return {
        prefix + "answered": 1,
        prefix + "within": 1 if within_sla else 0,
        prefix + "wait_ms": waited_ms,
    }
