"""Service level and average speed of answer from minute buckets."""

from __future__ import annotations

from services.routing.domain.model import Agent
from services.routing.domain.stats import (
    AnswerTotals,
    answer_counters,
    minute_of,
    sum_buckets,
    window_minutes,
)


def test_the_window_is_the_last_sixty_minutes_including_this_one() -> None:
    now = 120 * 60_000 + 5
    minutes = window_minutes(now)
    assert len(minutes) == 60 and minutes[0] == minute_of(now) == 120 and minutes[-1] == 61


def test_buckets_add_up_per_category_and_channel() -> None:
    b1 = answer_counters("basic", "chat", 30_000, True)
    b2 = answer_counters("basic", "chat", 90_000, False)
    b3 = answer_counters("urgent", "voice", 1_000, True)
    merged = {k: b1[k] + b2[k] for k in b1} | b3
    totals = sum_buckets([merged, {"junk": 3}])
    basic = totals[("basic", "chat")]
    assert basic == AnswerTotals(answered=2, within_sla=1, wait_ms=120_000)
    assert basic.service_level == 0.5
    assert basic.average_speed_of_answer == 60.0
    assert totals[("urgent", "voice")].service_level == 1.0


def test_nothing_answered_means_no_service_level_rather_than_zero() -> None:
    assert AnswerTotals().service_level is None
    assert AnswerTotals().average_speed_of_answer is None


def test_occupancy_is_load_over_capacity() -> None:
    agent = Agent("a", capacity={"chat": 3, "voice": 1}, load={"chat": 2})
    assert agent.occupancy == 0.5
    assert Agent("b").occupancy == 0.0
