"""The state machines of ``domain/lifecycle.py`` against the real Lua scripts: every
(state, event) pair of the task and reservation tables, allowed or forbidden, driven
through the use cases on a real redis-server. An allowed pair ends in the table's
state; a forbidden one is refused (409, 404 when there is no offer to act on, or the
reserve step's ``task_not_queued``) and leaves the state as it was."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from services.routing.domain.lifecycle import (
    RESERVATION_TRANSITIONS,
    TASK_TRANSITIONS,
    ReservationEvent,
    ReservationState,
    TaskEvent,
    TaskState,
    refusal,
    reservation_after,
    task_after,
)
from services.routing.domain.model import InvalidTransition, NotFound
from services.routing.domain.state import ReserveOutcome
from services.routing.service import RoutingService

from .conftest import Clock

PROFILE = {"name": "a", "skills": {}, "languages": ["en"], "channels": {"chat": 1}}
TIMEOUT_S = 20.0


@dataclass
class Setup:
    service: RoutingService
    clock: Clock
    task_id: str
    reservation_id: str | None  # the task's latest offer, if it had one

    def task_state(self) -> str:
        return self.service.task_view(self.task_id)["status"]

    def reservation_state(self) -> str:
        assert self.reservation_id is not None
        found = self.service.store.reservation(self.reservation_id)
        assert found is not None
        return found.status


def setup(service: RoutingService, clock: Clock, path: list[str]) -> Setup:
    """A task walked along ``path`` (steps of the real use cases) from queued."""
    service.put_agent("a", {**PROFILE, "status": "away"})
    tid = service.create_task({"channel": "chat", "customer_id": "c", "category": "basic"})[
        "task_id"
    ]
    s = Setup(service, clock, tid, None)
    for step in path:
        if step == "offer":
            service.set_agent_status("a", "available")  # matched at once: reserved
            s.reservation_id = service.task_view(tid)["reservation_id"]
        elif step == "accept":
            service.accept(s.reservation_id or "")
        elif step == "reject":
            service.reject(s.reservation_id or "")
        elif step == "expire":
            clock.advance(TIMEOUT_S + 1)
            service.tick()
        elif step == "complete":
            service.complete_task(tid)
        elif step == "cancel":
            service.cancel_task(tid, "hung up")
    return s


TASK_PATHS: dict[TaskState, list[str]] = {
    TaskState.QUEUED: [],
    TaskState.RESERVED: ["offer"],
    TaskState.ASSIGNED: ["offer", "accept"],
    TaskState.COMPLETED: ["offer", "accept", "complete"],
    TaskState.CANCELED: ["offer", "cancel"],
}
RESERVATION_PATHS: dict[ReservationState, list[str]] = {
    ReservationState.PENDING: ["offer"],
    ReservationState.ACCEPTED: ["offer", "accept"],
    ReservationState.REJECTED: ["offer", "reject"],
    ReservationState.TIMEOUT: ["offer", "expire"],
    ReservationState.CANCELED: ["offer", "cancel"],
}


def apply_task_event(s: Setup, event: TaskEvent) -> bool:
    """Drives ``event`` through the scripts; True when it went through."""
    svc = s.service
    try:
        if event is TaskEvent.RESERVE:
            # A second agent, filed without matching, so only this reserve can offer.
            svc.store.put_agent("b", {**PROFILE, "status": "available"}, s.clock())
            b = svc.store.agent("b")
            assert b is not None
            outcome = svc.store.reserve(
                s.task_id, "b", "r_" + "b" * 32, s.clock() + 20_000, b.version, s.clock()
            )
            return outcome is ReserveOutcome.OK
        if event is TaskEvent.REQUEUE:
            svc.reject(s.reservation_id or "r_" + "0" * 32)
        elif event is TaskEvent.ACCEPT:
            svc.accept(s.reservation_id or "r_" + "0" * 32)
        elif event is TaskEvent.COMPLETE:
            svc.complete_task(s.task_id)
        elif event is TaskEvent.CANCEL:
            svc.cancel_task(s.task_id, "hung up")
    except InvalidTransition:
        return False
    except NotFound:
        assert s.reservation_id is None  # only an offer that never existed is missing
        return False
    return True


@pytest.mark.parametrize(
    ("state", "event"),
    list(itertools.product(TaskState, TaskEvent)),
    ids=lambda v: str(v),
)
def test_every_task_transition_matches_the_table(
    make_service: Any, clock: Clock, state: TaskState, event: TaskEvent
) -> None:
    s = setup(make_service(decline_cooloff_s=3600.0), clock, TASK_PATHS[state])
    assert s.task_state() == state
    went = apply_task_event(s, event)
    expected = task_after(state, event)
    assert went == (expected is not None), (state, event)
    assert s.task_state() == (expected or state)


def apply_reservation_event(s: Setup, event: ReservationEvent) -> bool | None:
    """Drives ``event``; True/False when the call says whether it went through, None
    when only the state tells (a timer, or a cancel of the task)."""
    svc, rid = s.service, s.reservation_id or ""
    try:
        if event is ReservationEvent.ACCEPT:
            svc.accept(rid)
        elif event is ReservationEvent.REJECT:
            svc.reject(rid)
        elif event is ReservationEvent.TIME_OUT:
            s.clock.advance(TIMEOUT_S + 1)
            svc.tick()
            return None
        elif event is ReservationEvent.CANCEL:
            try:
                svc.cancel_task(s.task_id, "hung up")
            except InvalidTransition:  # the task ended already: the offer is untouched
                pass
            return None
    except InvalidTransition as exc:
        assert str(exc) == refusal("reservation", s.reservation_state())
        return False
    return True


@pytest.mark.parametrize(
    ("state", "event"),
    list(itertools.product(ReservationState, ReservationEvent)),
    ids=lambda v: str(v),
)
def test_every_reservation_transition_matches_the_table(
    make_service: Any, clock: Clock, state: ReservationState, event: ReservationEvent
) -> None:
    s = setup(make_service(decline_cooloff_s=3600.0), clock, RESERVATION_PATHS[state])
    assert s.reservation_state() == state
    went = apply_reservation_event(s, event)
    expected = reservation_after(state, event)
    if went is not None:
        assert went == (expected is not None), (state, event)
    assert s.reservation_state() == (expected or state)


def test_an_accept_past_the_expiry_is_the_time_out_row(make_service: Any, clock: Clock) -> None:
    s = setup(make_service(), clock, ["offer"])
    clock.advance(TIMEOUT_S + 1)  # the dispatcher has not ticked yet
    with pytest.raises(InvalidTransition, match="^the reservation is timeout$"):
        s.service.accept(s.reservation_id or "")
    assert s.reservation_state() == reservation_after(
        ReservationState.PENDING, ReservationEvent.TIME_OUT
    )
    assert s.task_state() == task_after(TaskState.RESERVED, TaskEvent.REQUEUE)


def test_the_tables_cover_every_state() -> None:
    assert {s for pair in TASK_TRANSITIONS for s in pair if isinstance(s, TaskState)} | set(
        TASK_TRANSITIONS.values()
    ) == set(TaskState)
    assert {s for (s, _) in RESERVATION_TRANSITIONS} | set(RESERVATION_TRANSITIONS.values()) == set(
        ReservationState
    )
