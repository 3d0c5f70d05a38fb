"""First-contact resolution and repeat-contact rate, folded from crm.case.* events.

The field's pain: customers repeat their story to every new agent, and come
back about the same problem. Definitions:

- a *contact* is a new case (``crm.case.created``) or a contact merged into an
  open similar case (``crm.case.updated`` with ``merged: true``): the latter
  is a *repeat contact*;
- repeat-contact rate = repeat contacts / contacts;
- first-contact resolution (FCR) = cases resolved for the first time after a
  single contact / cases resolved for the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RESOLVED = {"resolved", "closed"}


def case_counters(
    event_type: str, data: Mapping[str, Any], contacts_so_far: int, already_resolved: bool
) -> tuple[dict[str, int], int, bool]:
    """(counters to add, contacts to add to the case, whether this is its first resolution)."""
    if event_type == "crm.case.created":
        return {"contacts": 1, "cases": 1}, 1, False
    if event_type != "crm.case.updated":
        return {}, 0, False
    if data.get("merged"):
        return {"contacts": 1, "repeat_contacts": 1}, 1, False
    if data.get("status") in RESOLVED and not already_resolved:
        counters = {"resolved": 1}
        if contacts_so_far <= 1:
            counters["resolved_first_contact"] = 1
        return counters, 0, True
    return {}, 0, False


def summary(counters: Mapping[str, int]) -> dict[str, Any]:
    contacts = counters.get("contacts", 0)
    resolved = counters.get("resolved", 0)
    return {
        "contacts": contacts,
        "cases_opened": counters.get("cases", 0),
        "repeat_contacts": counters.get("repeat_contacts", 0),
        "repeat_contact_rate": (
            round(counters.get("repeat_contacts", 0) / contacts, 4) if contacts else None
        ),
        "cases_resolved": resolved,
        "first_contact_resolution": (
            round(counters.get("resolved_first_contact", 0) / resolved, 4) if resolved else None
        ),
    }
