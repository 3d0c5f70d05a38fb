"""The field's indicators, folded from events: pure functions, no Redis."""

from __future__ import annotations

from services.crm.domain import kpis as crm
from services.routing.domain import kpis as routing

SLA = {"basic": 60.0, "complex": 1800.0, "urgent": 300.0}


def fold_routing(waits: list[tuple[str, float]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for category, seconds in waits:
        data = {"category": category, "waited_ms": int(seconds * 1000)}
        for name, value in routing.assigned_counters(data, SLA).items():
            total[name] = total.get(name, 0) + value
    return total


def test_first_response_per_category_counts_averages_and_sla_share() -> None:
    counters = fold_routing([("basic", 4), ("basic", 50), ("basic", 90), ("urgent", 1200)])
    basic, urgent = routing.first_response(counters, ["basic", "urgent"], SLA)
    assert basic["answered"] == 3
    assert basic["average_seconds"] == 48.0
    assert basic["within_sla"] == round(2 / 3, 4)
    assert basic["p50_seconds_at_most"] == 60.0  # 50 s lies in the (30, 60] bucket
    assert basic["p90_seconds_at_most"] == 120.0
    assert urgent["within_sla"] == 0.0
    assert urgent["within_field_benchmark"] == 0.0  # 20 minutes: over the 15-minute mark


def test_a_category_with_no_answers_reports_nothing_rather_than_zero() -> None:
    (row,) = routing.first_response({}, ["complex"], SLA)
    assert row["answered"] == 0 and row["average_seconds"] is None and row["within_sla"] is None


def test_waits_beyond_the_last_bound_land_in_the_open_bucket() -> None:
    assert routing.bucket_of(7200) == "inf"
    assert routing.bucket_of(0) == "le5"
    counters = fold_routing([("basic", 7200)])
    assert routing.first_response(counters, ["basic"], SLA)[0]["p50_seconds_at_most"] is None


def fold_crm(events: list[tuple[str, dict]]) -> dict[str, int]:
    total: dict[str, int] = {}
    contacts: dict[str, int] = {}
    resolved: set[str] = set()
    for event_type, data in events:
        case = data["case_id"]
        counters, more, first = crm.case_counters(
            event_type, data, contacts.get(case, 0), case in resolved
        )
        contacts[case] = contacts.get(case, 0) + more
        if first:
            resolved.add(case)
        for name, value in counters.items():
            total[name] = total.get(name, 0) + value
    return total


def test_a_problem_raised_twice_is_a_repeat_contact_and_not_first_contact_resolution() -> None:
    counters = fold_crm(
        [
            ("crm.case.created", {"case_id": "a"}),
            ("crm.case.created", {"case_id": "b"}),
            ("crm.case.updated", {"case_id": "b", "merged": True, "channel": "voice"}),
            ("crm.case.updated", {"case_id": "a", "status": "resolved"}),
            ("crm.case.updated", {"case_id": "b", "status": "resolved"}),
            ("crm.case.updated", {"case_id": "a", "status": "closed"}),  # not a second resolution
        ]
    )
    result = crm.summary(counters)
    assert result["contacts"] == 3 and result["repeat_contacts"] == 1
    assert result["repeat_contact_rate"] == round(1 / 3, 4)
    assert result["cases_resolved"] == 2
    assert result["first_contact_resolution"] == 0.5


def test_status_changes_short_of_resolution_change_nothing() -> None:
    counters = fold_crm(
        [
            ("crm.case.created", {"case_id": "a"}),
            ("crm.case.updated", {"case_id": "a", "status": "pending_customer"}),
        ]
    )
    assert crm.summary(counters)["cases_resolved"] == 0
    assert crm.summary({})["first_contact_resolution"] is None
