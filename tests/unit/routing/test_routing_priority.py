"""The urgency score: deadline slack plus category, tier and sentiment weights."""

from __future__ import annotations

import pytest

from services.routing.domain.model import InvalidRequest
from services.routing.domain.priority import PriorityPolicy

POLICY = PriorityPolicy()
T0 = 1_000_000


def key(category: str, created_ms: int, tier: str | None = None, sentiment=None) -> int:
    due = POLICY.sla_due_ms(category, created_ms)
    return POLICY.order_key(category, tier, sentiment, due)


def test_sla_targets_default_to_60_1800_and_300_seconds() -> None:
    assert POLICY.sla_due_ms("basic", T0) == T0 + 60_000
    assert POLICY.sla_due_ms("complex", T0) == T0 + 1_800_000
    assert POLICY.sla_due_ms("urgent", T0) == T0 + 300_000


def test_sla_targets_are_configurable_but_must_be_positive() -> None:
    policy = PriorityPolicy(sla_seconds={"basic": 30, "complex": 600, "urgent": 120})
    assert policy.sla_due_ms("basic", T0) == T0 + 30_000
    with pytest.raises(InvalidRequest):
        PriorityPolicy(sla_seconds={"basic": 0, "complex": 1, "urgent": 1})


def test_a_vip_urgent_task_overtakes_older_basic_ones() -> None:
    older_basics = [key("basic", T0 - i * 1_000) for i in range(1, 20)]
    vip_urgent = key("urgent", T0, tier="vip")
    assert all(vip_urgent < k for k in older_basics)


def test_a_basic_task_close_to_its_deadline_stays_ahead_of_a_plain_urgent_one() -> None:
    # 45 s waited: 15 s of slack left, the urgent one still has 300 s
    assert key("basic", T0 - 45_000) < key("urgent", T0)


def test_basic_contacts_come_before_complex_ones_raised_at_the_same_time() -> None:
    assert key("basic", T0) < key("complex", T0)


def test_negative_sentiment_raises_the_urgency() -> None:
    assert key("basic", T0, sentiment=-0.4) < key("basic", T0, sentiment=0.0)
    assert key("basic", T0, sentiment=0.9) == key("basic", T0)


def test_below_the_threshold_a_task_escalates() -> None:
    assert POLICY.escalates(-0.6)
    assert not POLICY.escalates(-0.5)
    assert not POLICY.escalates(None)
    assert POLICY.priority("basic", None, -0.6) > POLICY.priority("basic", None, -0.4)


def test_the_order_key_is_the_urgency_score_turned_around() -> None:
    a = ("urgent", "vip", -0.2, POLICY.sla_due_ms("urgent", T0))
    b = ("basic", None, None, POLICY.sla_due_ms("basic", T0 - 20_000))
    for now in (T0, T0 + 50_000, T0 + 500_000):
        by_score = POLICY.urgency(*a, now) > POLICY.urgency(*b, now)
        by_key = POLICY.order_key(*a) < POLICY.order_key(*b)
        assert by_score == by_key


def test_urgency_grows_as_the_deadline_nears() -> None:
    due = POLICY.sla_due_ms("basic", T0)
    assert POLICY.urgency("basic", None, None, due, T0 + 50_000) > POLICY.urgency(
        "basic", None, None, due, T0
    )


def test_the_priority_shown_rises_with_category_and_tier() -> None:
    assert POLICY.priority("urgent", "vip", None) > POLICY.priority("urgent", None, None)
    assert POLICY.priority("urgent", None, None) > POLICY.priority("basic", None, None)
