"""Agents, tasks, reservations and timers against a real redis-server."""

from __future__ import annotations

from typing import Any

import pytest

from services.routing.domain.model import InvalidTransition, NotFound
from services.routing.service import RoutingService

from .conftest import Clock, events

ZH_BILLING = {"skills": {"billing": 4}, "languages": ["zh", "en"], "channels": {"chat": 2}}


def agent(service: RoutingService, aid: str, status: str = "available", **kw: Any) -> None:
    service.put_agent(aid, {"name": aid, **ZH_BILLING, **kw, "status": status})


def task(service: RoutingService, **kw: Any) -> dict[str, Any]:
    cmd = {
        "channel": "chat",
        "customer_id": "c-1",
        "category": "basic",
        "skills": {"billing": 3},
        "language": "zh",
    }
    cmd.update(kw)
    return service.create_task(cmd)


def test_a_task_is_reserved_for_an_eligible_agent_at_once(service: RoutingService, redis) -> None:
    agent(service, "a1")
    view = task(service)
    assert view["status"] == "reserved" and view["agent_id"] == "a1"
    types = [e["type"] for e in events(redis)]
    assert types[-3:] == [
        "routing.task.created",
        "routing.task.reserved",
        "routing.reservation.created",
    ]


def test_without_an_eligible_agent_the_task_waits(service: RoutingService) -> None:
    agent(service, "fr", languages=["fr"])
    agent(service, "junior", skills={"billing": 2})
    agent(service, "away", status="away")
    assert task(service)["status"] == "queued"


def test_accepting_assigns_and_completing_frees_the_capacity(
    service: RoutingService, redis, clock: Clock
) -> None:
    agent(service, "a1")
    view = task(service)
    clock.advance(3)
    service.accept(view["reservation_id"])
    assigned = service.task_view(view["task_id"])
    assert assigned["status"] == "assigned"
    ev = events(redis, type_prefix="routing.task.assigned")
    assert ev[0]["waited_ms"] == 3000 and ev[0]["agent_id"] == "a1"
    assert service.agent_view("a1")["load"] == {"chat": 1}
    service.complete_task(view["task_id"])
    assert service.agent_view("a1")["load"] == {"chat": 0}
    with pytest.raises(InvalidTransition):
        service.complete_task(view["task_id"])
    with pytest.raises(InvalidTransition):
        service.accept(view["reservation_id"])


def test_a_freed_agent_takes_the_most_urgent_waiting_task(service: RoutingService) -> None:
    agent(service, "a1", channels={"chat": 1})
    first = task(service)
    waiting_basic = task(service, customer_id="c-2")
    vip_urgent = task(service, customer_id="c-3", category="urgent", tier="vip")
    assert waiting_basic["status"] == vip_urgent["status"] == "queued"
    service.accept(first["reservation_id"])
    service.complete_task(first["task_id"])
    assert service.task_view(vip_urgent["task_id"])["status"] == "reserved"
    assert service.task_view(waiting_basic["task_id"])["status"] == "queued"


def test_capacity_is_never_exceeded(service: RoutingService) -> None:
    agent(service, "a1", channels={"chat": 2})
    views = [task(service, customer_id=f"c{i}") for i in range(4)]
    assert [v["status"] for v in views] == ["reserved", "reserved", "queued", "queued"]


def test_a_rejected_offer_goes_to_the_next_agent(service: RoutingService, clock: Clock) -> None:
    agent(service, "a1")
    clock.advance(1)
    agent(service, "a2")
    view = task(service)
    assert view["agent_id"] == "a1"  # longest idle
    service.reject(view["reservation_id"])
    again = service.task_view(view["task_id"])
    assert again["status"] == "reserved" and again["agent_id"] == "a2"
    assert again["created_at"] == view["created_at"]


def test_reservation_timeout_reoffers_and_three_misses_make_the_agent_away(
    service: RoutingService, redis, clock: Clock
) -> None:
    agent(service, "a1")
    for i in range(3):
        view = task(service, customer_id=f"c{i}")
        assert view["agent_id"] == "a1"
        clock.advance(21)
        service.tick()
    assert service.agent_view("a1")["status"] == "away"
    changes = events(redis, type_prefix="routing.agent.status_changed")
    assert changes[-1]["status"] == "away" and changes[-1]["reason"] == "missed_offers"
    assert len(events(redis, type_prefix="routing.reservation.timeout")) == 3


def test_going_offline_during_a_reservation_requeues_the_task(
    service: RoutingService, clock: Clock
) -> None:
    agent(service, "a1")
    view = task(service)
    clock.advance(1)
    agent(service, "a2", status="away")
    service.set_agent_status("a1", "offline")
    assert service.task_view(view["task_id"])["status"] == "queued"
    assert service.agent_view("a1")["load"] == {"chat": 0}
    service.set_agent_status("a2", "available")
    assert service.task_view(view["task_id"])["agent_id"] == "a2"


def test_sla_breach_escalates_exactly_once_with_two_dispatchers(
    make_service, redis, clock: Clock
) -> None:
    one, two = make_service(), make_service()
    t = task(one)
    clock.advance(61)
    for _ in range(3):
        one.tick()
        two.tick()
    escalations = events(redis, type_prefix="routing.task.escalated")
    assert [(e["task_id"], e["reason"]) for e in escalations] == [(t["task_id"], "sla")]


def test_unhandled_for_two_hours_goes_to_the_team_lead_queue(
    service: RoutingService, redis, clock: Clock
) -> None:
    t = task(service)
    agent(service, "lead", team="team-lead", status="away")
    clock.advance(7201)
    service.tick()
    assert service.task_view(t["task_id"])["team"] == "team-lead"
    agent(service, "plain")
    assert service.task_view(t["task_id"])["status"] == "queued"
    service.set_agent_status("lead", "available")
    assert service.task_view(t["task_id"])["agent_id"] == "lead"
    reasons = [e["reason"] for e in events(redis, type_prefix="routing.task.escalated")]
    assert reasons == ["sla", "team_lead"]


def test_negative_sentiment_escalates_to_the_senior_team_first(
    service: RoutingService, redis, clock: Clock
) -> None:
    agent(service, "plain")
    t = task(service, sentiment=-0.8)
    assert t["status"] == "queued" and t["team"] == "senior"
    agent(service, "senior1", team="senior")
    assert service.task_view(t["task_id"])["agent_id"] == "senior1"
    ev = events(redis, type_prefix="routing.task.escalated")
    assert ev[0]["reason"] == "negative_sentiment"


def test_the_senior_team_requirement_lapses_after_its_wait(
    service: RoutingService, clock: Clock
) -> None:
    agent(service, "plain")
    t = task(service, sentiment=-0.8)
    clock.advance(61)
    service.tick()
    assert service.task_view(t["task_id"])["agent_id"] == "plain"


def test_the_previous_agent_gets_the_customer_back(service: RoutingService, clock: Clock) -> None:
    agent(service, "a1")
    clock.advance(1)
    agent(service, "a2")
    first = task(service)
    service.accept(first["reservation_id"])
    service.complete_task(first["task_id"])  # a1 is now the most recently busy
    clock.advance(1)
    again = task(service)
    assert again["agent_id"] == "a1"


def test_sticky_waits_for_a_busy_previous_agent_then_times_out(
    service: RoutingService, clock: Clock
) -> None:
    agent(service, "a1", channels={"chat": 1})
    first = task(service)
    service.accept(first["reservation_id"])
    agent(service, "a2")
    again = task(service)  # a1 is busy: held for it
    assert again["status"] == "queued"
    clock.advance(21)
    service.tick()
    assert service.task_view(again["task_id"])["agent_id"] == "a2"


def test_sticky_is_skipped_at_once_when_the_previous_agent_is_offline(
    service: RoutingService,
) -> None:
    agent(service, "a1")
    first = task(service)
    service.accept(first["reservation_id"])
    service.complete_task(first["task_id"])
    service.set_agent_status("a1", "offline")
    agent(service, "a2")
    assert task(service)["agent_id"] == "a2"


def test_relaxation_steps_widen_the_requirements_over_time(make_service, clock: Clock) -> None:
    from services.routing.domain.matching import RelaxationStep

    service = make_service(relaxation=(RelaxationStep(30, lower_levels_by=2),))
    agent(service, "junior", skills={"billing": 2})
    t = task(service, skills={"billing": 4})
    assert t["status"] == "queued"
    clock.advance(31)
    service.tick()
    assert service.task_view(t["task_id"])["agent_id"] == "junior"


def test_cancel_frees_the_reserved_agent(service: RoutingService, redis) -> None:
    agent(service, "a1", channels={"chat": 1})
    t = task(service)
    waiting = task(service, customer_id="c-2")
    service.cancel_task(t["task_id"], "customer_left")
    assert service.task_view(waiting["task_id"])["agent_id"] == "a1"
    ev = events(redis, type_prefix="routing.task.canceled")
    assert ev == [
        {
            "type": "routing.task.canceled",
            "id": ev[0]["id"],
            "task_id": t["task_id"],
            "customer_id": "c-1",
            "reason": "customer_left",
        }
    ]


def test_unknown_things_are_not_found(service: RoutingService) -> None:
    with pytest.raises(NotFound):
        service.task_view("nope")
    with pytest.raises(NotFound):
        service.accept("nope")
    with pytest.raises(NotFound):
        service.set_agent_status("nope", "available")


def test_erasure_forgets_the_customer(service: RoutingService, redis) -> None:
    agent(service, "a1")
    t = task(service)
    service.accept(t["reservation_id"])
    task(service)
    service.erase_customer("c-1")
    assert service.export_customer("c-1") == {
        "customer_id": "c-1",
        "tasks": [],
        "reservations": [],
        "last_agent_id": None,
    }
    assert service.agent_view("a1")["load"] == {"chat": 0}
    assert not [k for k in redis.keys("*") if "c-1" in k]
    assert not redis.keys("sb:rt:{default}:res:*") and not redis.keys("sb:rt:{default}:task:*")
    service.erase_customer("c-1")  # idempotent


def test_the_export_lists_every_offer_of_the_customers_tasks(
    service: RoutingService, clock: Clock
) -> None:
    agent(service, "a1")
    clock.advance(1)
    agent(service, "a2")
    t = task(service)
    service.reject(t["reservation_id"])
    export = service.export_customer("c-1")
    assert [(r["agent_id"], r["status"]) for r in export["reservations"]] == [
        ("a1", "rejected"),
        ("a2", "pending"),
    ]
    assert export["tasks"][0]["task_id"] == t["task_id"]


def test_answered_offers_expire(service: RoutingService, redis) -> None:
    agent(service, "a1")
    t = task(service)
    assert redis.ttl(f"sb:rt:{{default}}:res:{t['reservation_id']}") == -1
    service.accept(t["reservation_id"])
    assert redis.ttl(f"sb:rt:{{default}}:res:{t['reservation_id']}") > 0


def test_verification_marks_waiting_tasks(service: RoutingService) -> None:
    t = task(service)
    assert service.mark_verified("c-1", "v-1") == 1
    assert service.task_view(t["task_id"])["verified"] is True
    assert service.mark_verified("c-1", "v-1") == 0


def test_queue_stats_count_waiting_and_answers(service: RoutingService, clock: Clock) -> None:
    for i in range(3):
        task(service, customer_id=f"c{i}")
    clock.advance(10)
    agent(service, "a1", channels={"chat": 1})
    row = next(
        r
        for r in service.queue_stats()["items"]
        if (r["category"], r["channel"]) == ("basic", "chat")
    )
    assert row["waiting"] == 2 and row["longest_wait_seconds"] == 10.0
    res = service.reservations_of("a1")[0]
    service.accept(res["reservation_id"])
    row = next(
        r
        for r in service.queue_stats()["items"]
        if (r["category"], r["channel"]) == ("basic", "chat")
    )
    assert row["answered"] == 1 and row["service_level"] == 1.0
    assert row["average_speed_of_answer_seconds"] == 10.0
    assert row["agents_available"] == 0


def test_best_fit_through_the_store_keeps_the_expert_free(make_service, clock: Clock) -> None:
    service = make_service(strategy_name="best_fit")
    agent(service, "expert", skills={"billing": 5})
    clock.advance(1)
    agent(service, "fit", skills={"billing": 3})
    assert task(service)["agent_id"] == "fit"


def test_least_loaded_through_the_store(make_service, clock: Clock) -> None:
    service = make_service(strategy_name="least_loaded")
    agent(service, "busy", channels={"chat": 4})
    clock.advance(1)
    agent(service, "calm", channels={"chat": 4})
    first = task(service, customer_id="x1")
    second = task(service, customer_id="x2")
    assert {first["agent_id"], second["agent_id"]} == {"busy", "calm"}


def test_agent_totals_are_kept_without_reading_agents(service: RoutingService) -> None:
    agent(service, "a1")
    agent(service, "a2", status="away")
    agent(service, "a3", status="offline")
    t = task(service)
    task(service, customer_id="c-2")
    service.set_agent_status("a2", "offline")
    totals = service.agent_totals()
    assert totals["by_status"] == {"available": 1, "away": 0, "offline": 2}
    assert totals["busy_slots"] == {"chat": 2}
    service.accept(t["reservation_id"])
    service.complete_task(t["task_id"])
    assert service.agent_totals()["busy_slots"] == {"chat": 1}
