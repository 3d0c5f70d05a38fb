"""The task and reservation state machines as data.

Every transition the Lua scripts make (``adapters/redis/lua``) is a row here, and a
test (``tests/integration/routing/test_routing_lifecycle_table.py``) drives the real
scripts through every (state, event) pair, allowed or not, and checks the outcome
against these tables: a pair missing from a table must be refused with the state
unchanged (409 ``the task is <state>`` / ``the reservation is <state>``).

Task::

    queued ──reserve──▶ reserved ──accept──▶ assigned ──complete──▶ completed
      ▲                    │
      └──────requeue───────┘   (offer rejected, timed out, or its agent went offline)
    queued / reserved / assigned ──cancel──▶ canceled

Reservation (an offer)::

    pending ──accept──▶ accepted
    pending ──reject──▶ rejected
    pending ──time_out─▶ timeout    (its timer, or an accept past its expiry)
    pending ──cancel───▶ canceled   (its task canceled, or its agent went offline)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from services.routing.domain.errors import AgentBinding, InvalidTransition, NotFound
from services.routing.domain.state import Outcome, Step


class TaskState(StrEnum):
    QUEUED = "queued"
    RESERVED = "reserved"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    CANCELED = "canceled"


class TaskEvent(StrEnum):
    RESERVE = "reserve"
    REQUEUE = "requeue"
    ACCEPT = "accept"
    COMPLETE = "complete"
    CANCEL = "cancel"


class ReservationState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CANCELED = "canceled"


class ReservationEvent(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    TIME_OUT = "time_out"
    CANCEL = "cancel"


TASK_TRANSITIONS: Mapping[tuple[TaskState, TaskEvent], TaskState] = MappingProxyType(
    {
        (TaskState.QUEUED, TaskEvent.RESERVE): TaskState.RESERVED,
        (TaskState.RESERVED, TaskEvent.REQUEUE): TaskState.QUEUED,
        (TaskState.RESERVED, TaskEvent.ACCEPT): TaskState.ASSIGNED,
        (TaskState.ASSIGNED, TaskEvent.COMPLETE): TaskState.COMPLETED,
        (TaskState.QUEUED, TaskEvent.CANCEL): TaskState.CANCELED,
        (TaskState.RESERVED, TaskEvent.CANCEL): TaskState.CANCELED,
        (TaskState.ASSIGNED, TaskEvent.CANCEL): TaskState.CANCELED,
    }
)

RESERVATION_TRANSITIONS: Mapping[tuple[ReservationState, ReservationEvent], ReservationState] = (
    MappingProxyType(
        {
            (ReservationState.PENDING, ReservationEvent.ACCEPT): ReservationState.ACCEPTED,
            (ReservationState.PENDING, ReservationEvent.REJECT): ReservationState.REJECTED,
            (ReservationState.PENDING, ReservationEvent.TIME_OUT): ReservationState.TIMEOUT,
            (ReservationState.PENDING, ReservationEvent.CANCEL): ReservationState.CANCELED,
        }
    )
)

OPEN_TASK_STATES = frozenset(s for (s, e) in TASK_TRANSITIONS if e is TaskEvent.CANCEL)
FINAL_TASK_STATES = frozenset(TaskState) - {s for (s, _) in TASK_TRANSITIONS}


def task_after(state: TaskState, event: TaskEvent) -> TaskState | None:
    """The state ``event`` moves a task in ``state`` to; None when not allowed."""
    return TASK_TRANSITIONS.get((state, event))


def reservation_after(state: ReservationState, event: ReservationEvent) -> ReservationState | None:
    """The state ``event`` moves a reservation in ``state`` to; None when not allowed."""
    return RESERVATION_TRANSITIONS.get((state, event))


def refusal(what: str, state: str) -> str:
    """The message of a refused transition (the 409's detail): the state it is in."""
    return f"the {what} is {state}"


def check(step: Step, what: str, ident: str) -> None:
    """Raises the domain error a refused step stands for (nothing when it went through)."""
    if step.outcome in (Outcome.OK, Outcome.EXPIRED):
        return
    if step.outcome is Outcome.MISSING:
        raise NotFound(f"no {what} {ident}")
    if step.outcome is Outcome.NOT_YOURS:  # a key bound to another agent (API.md B)
        raise AgentBinding(f"the {what} is another agent's; this API key acts only as its own")
    raise InvalidTransition(refusal(what, step.state))
