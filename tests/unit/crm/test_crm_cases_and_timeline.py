"""Case workflow, reopening, similar-case merging, numbering; event projections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.crm.domain.cases import (
    CasePolicy,
    CaseSummary,
    case_number,
    check_transition,
    similar_case,
    status_on_new_contact,
)
from services.crm.domain.errors import InvalidTransition
from services.crm.domain.timeline import PROJECTED_TYPES, TimelineItem, project

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = CasePolicy()


def test_case_numbers_are_human_friendly() -> None:
    assert case_number(2026, 123) == "C-2026-000123"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("new", "open"),
        ("open", "pending_customer"),
        ("pending_customer", "open"),
        ("pending_customer", "resolved"),
        ("resolved", "closed"),
        ("resolved", "open"),
    ],
)
def test_the_workflow_allows_its_steps(current: str, target: str) -> None:
    check_transition(current, target, closed_at=None, now=NOW, policy=POLICY)


@pytest.mark.parametrize(
    ("current", "target"),
    [("new", "closed"), ("open", "new"), ("closed", "resolved"), ("open", "archived")],
)
def test_the_workflow_refuses_other_steps(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target, closed_at=None, now=NOW, policy=POLICY)


def test_a_closed_case_reopens_within_seven_days_only() -> None:
    check_transition("closed", "open", closed_at=NOW - timedelta(days=6), now=NOW, policy=POLICY)
    with pytest.raises(InvalidTransition):
        check_transition(
            "closed", "open", closed_at=NOW - timedelta(days=8), now=NOW, policy=POLICY
        )


def _case(
    cid: str,
    *,
    category: str = "billing",
    channel: str = "chat",
    status: str = "open",
    age: timedelta = timedelta(hours=1),
) -> CaseSummary:
    return CaseSummary(cid, category, channel, status, NOW - age)


def test_an_open_case_of_the_same_category_on_another_channel_is_the_similar_one() -> None:
    cases = [_case("c1"), _case("c2", category="refund_return")]
    found = similar_case(cases, category="billing", channel="voice", now=NOW, policy=POLICY)
    assert found is not None and found.id == "c1"


@pytest.mark.parametrize(
    "case",
    [
        _case("same-channel", channel="voice"),
        _case("resolved", status="resolved"),
        _case("too-old", age=timedelta(hours=73)),
        _case("other-category", category="refund_return"),
    ],
)
def test_no_similar_case_outside_the_rule(case: CaseSummary) -> None:
    assert similar_case([case], category="billing", channel="voice", now=NOW, policy=POLICY) is None


def test_a_new_contact_reopens_a_case_waiting_on_the_customer() -> None:
    assert status_on_new_contact("pending_customer") == "open"
    assert status_on_new_contact("new") == "new"


def test_verification_and_routing_events_project_onto_the_timeline() -> None:
    item = project(
        "identity.verification.approved",
        {"verification_id": "v1", "channel": "chat", "factors": ["totp", "sms_otp"], "sid": "s"},
    )
    assert item is not None and item.kind == "verification.approved"
    assert item.channel == "chat" and "totp, sms_otp" in item.summary
    assigned = project(
        "routing.task.assigned",
        {
            "task_id": "t1",
            "agent_id": "a7",
            "channel": "voice",
            "category": "basic",
            "waited_ms": 12000,
        },
    )
    assert assigned is not None and "a7" in assigned.summary and assigned.refs["task_id"] == "t1"
    assert project("routing.task.created", {"task_id": "t1"}) is None


PROJECTIONS = [
    (
        "identity.verification.approved",
        {"verification_id": "v1", "channel": "app", "reused": True, "sid": "s1"},
        TimelineItem(
            "verification.approved",
            "app",
            "identity verified (reused an earlier verification)",
            {"verification_id": "v1", "sid": "s1"},
        ),
    ),
    (
        "identity.verification.failed",
        {
            "verification_id": "v2",
            "customer_id": "p-1",
            "channel": "voice",
            "reason": "check_failed",
            "factor": "kba",
            "remaining_attempts": 2,
        },
        TimelineItem(
            "verification.failed",
            "voice",
            "identity verification failed: check_failed",
            {"verification_id": "v2"},
        ),
    ),
    (
        "identity.verification.locked",
        {"verification_id": "v3", "customer_id": "p-1", "channel": "chat"},
        TimelineItem(
            "verification.locked", "chat", "identity verification locked", {"verification_id": "v3"}
        ),
    ),
    (
        "identity.device.trusted",
        {"customer_id": "p-1", "device_id": "d1", "channel": "app"},
        TimelineItem("device.trusted", None, "device trusted", {"device_id": "d1"}),
    ),
    (
        "routing.task.assigned",
        {"task_id": "t1", "agent_id": "a7", "channel": "voice", "category": "basic"},
        TimelineItem(
            "task.assigned",
            "voice",
            "basic conversation assigned to agent a7",
            {"task_id": "t1", "agent_id": "a7"},
        ),
    ),
    (
        "routing.task.completed",
        {
            "task_id": "t2",
            "customer_id": "p-1",
            "agent_id": "a8",
            "channel": "chat",
            "category": "complex",
        },
        TimelineItem(
            "task.completed",
            "chat",
            "complex conversation completed by agent a8",
            {"task_id": "t2", "agent_id": "a8"},
        ),
    ),
    (
        "routing.task.escalated",
        {
            "task_id": "t3",
            "customer_id": "p-1",
            "channel": "email",
            "category": "urgent",
            "reason": "negative_sentiment",
            "team": "leads",
        },
        TimelineItem(
            "task.escalated",
            "email",
            "conversation escalated: negative_sentiment",
            {"task_id": "t3"},
        ),
    ),
    (
        "routing.task.escalated",
        {"task_id": "t4", "customer_id": "p-1"},
        TimelineItem("task.escalated", None, "conversation escalated", {"task_id": "t4"}),
    ),
]


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    PROJECTIONS,
    ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(PROJECTIONS)],
)
def test_each_consumed_event_type_has_its_timeline_item(
    event_type: str, data: dict[str, object], expected: TimelineItem
) -> None:
    assert project(event_type, data) == expected


def test_every_projected_type_is_covered_above() -> None:
    assert {event_type for event_type, _, _ in PROJECTIONS} == set(PROJECTED_TYPES)


def test_no_personal_or_unlisted_field_reaches_the_timeline() -> None:
    item = project(
        "identity.verification.failed",
        {"verification_id": "v2", "customer_id": "p-1", "phone": "+8613800138000"},
    )
    assert item is not None and "+8613800138000" not in f"{item.summary} {item.refs}"
    assert project("identity.session.issued", {"sid": "s1", "customer_id": "p-1"}) is None
