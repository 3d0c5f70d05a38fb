r"""Case rules: numbering, status workflow, reopening, similar-case merging.

Workflow (every change timestamped, on the timeline, evented)::

    new -> open -> pending_customer -> resolved -> closed
     |      ^  \________________________^  |         |
     |      |__________ reopen ____________|_________|  (closed: within 7 days)
     '-> resolved / pending_customer

A new contact on a similar case (same customer, same category, still open,
raised on another channel within the merge window) is recorded on that case
instead of opening another; a case waiting for the customer goes back to open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.crm.domain.errors import InvalidTransition

STATUSES = ("new", "open", "pending_customer", "resolved", "closed")
OPEN_STATUSES = frozenset({"new", "open", "pending_customer"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending_customer", "resolved"}),
    "open": frozenset({"pending_customer", "resolved"}),
    "pending_customer": frozenset({"open", "resolved"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset({"open"}),
}


@dataclass(frozen=True)
class CasePolicy:
    merge_window: timedelta = timedelta(hours=72)
    reopen_window: timedelta = timedelta(days=7)


def case_number(year: int, sequence: int) -> str:
    """Human-friendly and sortable: ``C-2026-000123`` (wider once a year passes 999,999)."""
    return f"C-{year}-{sequence:06d}"


def check_transition(
    current: str,
    target: str,
    *,
    closed_at: datetime | None,
    now: datetime,
    policy: CasePolicy,
) -> None:
    if target not in STATUSES:
        raise InvalidTransition(f"unknown status {target!r}")
    if target == current:
        return
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"a {current} case cannot become {target}")
    if current == "closed" and (closed_at is None or now - closed_at > policy.reopen_window):
        days = policy.reopen_window.days
        raise InvalidTransition(f"a case closed more than {days} days ago cannot be reopened")


@dataclass(frozen=True)
class CaseSummary:
    id: str
    category: str
    channel: str
    status: str
    created_at: datetime


def similar_case(
    candidates: Iterable[CaseSummary],
    *,
    category: str,
    channel: str,
    now: datetime,
    policy: CasePolicy,
    catch_all: str | None = None,
) -> CaseSummary | None:
    """The newest open case of this category raised on another channel within the window.
    Never for ``catch_all`` (the category of what no rule recognised): two contacts about
    nothing the rules know are not therefore about the same problem."""
    if category == catch_all:
        return None
    fitting = [
        c
        for c in candidates
        if c.category == category
        and c.status in OPEN_STATUSES
        and c.channel != channel
        and now - c.created_at <= policy.merge_window
    ]
    return max(fitting, key=lambda c: c.created_at, default=None)


def status_on_new_contact(status: str) -> str:
    """The customer got back to us: a case waiting on them is open again."""
    return "open" if status == "pending_customer" else status
