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


def test_a_merge_moves_the_sources_tasks_to_the_survivor_and_an_unmerge_back(
    make_service: Any,
) -> None:
    service = make_service()
    table = handlers(service)
    own = service.create_task({**TASK, "customer_id": "survivor"})
    moved = service.create_task({**TASK, "customer_id": "source"})
    data = {"survivor_id": "survivor", "source_id": "source", "merge_id": "m-1", "tier": "gold"}
    for _ in range(2):  # redelivered: nothing more happens
        table["crm.profile.merged"](Event.new("crm.profile.merged", data, source="crm"), None)  # type: ignore[arg-type]
    tasks = {t["task_id"] for t in service.export_customer("survivor")["tasks"]}
    assert tasks == {own["task_id"], moved["task_id"]}
    assert service.task_view(moved["task_id"])["customer_id"] == "survivor"
    undo = {k: data[k] for k in ("survivor_id", "source_id", "merge_id")}
    table["crm.profile.unmerged"](Event.new("crm.profile.unmerged", undo, source="crm"), None)  # type: ignore[arg-type]
    assert [t["task_id"] for t in service.export_customer("source")["tasks"]] == [moved["task_id"]]
    assert [t["task_id"] for t in service.export_customer("survivor")["tasks"]] == [own["task_id"]]
