"""The consumer's handlers against the real store: erasure, verification, cases."""

from __future__ import annotations

from typing import Any

from services.routing.consumer import handlers
from shared.events import Event

TASK = {"channel": "chat", "customer_id": "p-1", "category": "basic"}


def case_event(priority: str = "high") -> Event:
    return Event.new(
        "crm.case.created",
        {
            "case_id": "k-1",
            "case_number": "C-0001",
            "profile_id": "p-1",
            "channel": "voice",
            "category": "billing",
            "priority": priority,
            "subject": "bill",
        },
        source="crm",
    )


def test_cases_become_tasks_only_when_configured(make_service: Any) -> None:
    assert "crm.case.created" not in handlers(make_service())
    service = make_service(tasks_from_cases=True)
    handle = handlers(service)["crm.case.created"]
    handle(case_event(), None)  # type: ignore[arg-type]
    handle(case_event(), None)  # type: ignore[arg-type]  # redelivered
    (task,) = service.export_customer("p-1")["tasks"]
    assert (task["channel"], task["category"], task["case_id"]) == ("voice", "urgent", "k-1")
    assert task["attributes"] == {"case_number": "C-0001", "source": "crm"}


def test_erasure_and_verification_events_reach_the_customers_tasks(make_service: Any) -> None:
    service = make_service()
    table = handlers(service)
    task = service.create_task(TASK)
    approved = Event.new(
        "identity.verification.approved",
        {"verification_id": "v-1", "customer_id": "p-1"},
        source="identity",
    )
    table["identity.verification.approved"](approved, None)  # type: ignore[arg-type]
    assert service.task_view(task["task_id"])["verified"] is True
    erased = Event.new("crm.profile.erased", {"profile_id": "p-1"}, source="crm")
    table["crm.profile.erased"](erased, None)  # type: ignore[arg-type]
    table["crm.profile.erased"](erased, None)  # type: ignore[arg-type]
    assert service.export_customer("p-1")["tasks"] == []


def test_malformed_event_data_is_ignored(make_service: Any) -> None:
    table = handlers(make_service())
    table["crm.profile.erased"](
        Event.new("crm.profile.erased", {"profile_id": 5}, source="crm"), None
    )  # type: ignore[arg-type]
