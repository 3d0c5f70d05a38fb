"""Identity resolution: which profile do these identifiers name?

A pure decision over what the store found: each requested identifier maps to
the profile holding it, or to nobody. One profile -> resolved (attach what it
lacks); none -> create (when asked); two or more -> conflict, never a silent
merge: the pair becomes a merge candidate for a human.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from services.crm.domain.identifiers import Identifier


class Outcome(Enum):
    RESOLVED = "resolved"
    CREATE = "create"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Resolution:
    outcome: Outcome
    profile_id: str | None = None
    missing: tuple[Identifier, ...] = ()  # identifiers to attach to / create with
    profile_ids: tuple[str, ...] = ()  # the profiles in conflict, sorted


def decide(
    requested: Sequence[Identifier],
    owners: Mapping[Identifier, str],
    *,
    create: bool,
) -> Resolution:
    """``owners`` maps each identifier already held to its (live) profile id."""
    profiles = sorted({owners[i] for i in requested if i in owners})
    missing = tuple(i for i in requested if i not in owners)
    if len(profiles) > 1:
        return Resolution(Outcome.CONFLICT, profile_ids=tuple(profiles))
    if len(profiles) == 1:
        return Resolution(Outcome.RESOLVED, profile_id=profiles[0], missing=missing)
    if create:
        return Resolution(Outcome.CREATE, missing=missing)
    return Resolution(Outcome.NOT_FOUND, missing=missing)
