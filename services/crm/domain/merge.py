"""Merging two profiles of one customer, and undoing it.

The survivor keeps everything: every identifier, interaction and case of the
source moves to it. Scalar conflicts are settled "survivor wins", and the
loser's values are kept in the merge record so that an unmerge gives the
source back exactly what it brought. A field the survivor lacks is filled
from the source (a missing name or language is not a conflict).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.crm.domain.errors import MergeRefused

SCALARS = ("name", "tier", "language")


@dataclass(frozen=True)
class ProfileValues:
    name: str | None
    tier: str
    language: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergePlan:
    result: ProfileValues  # the survivor after the merge
    conflicts: dict[str, dict[str, Any]]  # field -> {"survivor": v, "source": v}
    filled: list[str]  # fields (attributes as "attributes.x") the source filled in

    def record(self, survivor: ProfileValues, source: ProfileValues) -> dict[str, Any]:
        """What the merge record keeps: enough to restore both sides."""
        return {
            "survivor_before": _as_dict(survivor),
            "source_before": _as_dict(source),
            "conflicts": self.conflicts,
            "filled": self.filled,
        }


def record_for_export(
    record: Mapping[str, Any], survivor_id: str, source_id: str, owner_ids: Collection[str]
) -> dict[str, Any]:
    """A merge record as the export of ``owner_ids`` (a profile and those merged into it)
    may show it. A side whose profile is not among them - the other party of a merge that
    was undone - is another customer: its values are withheld (``None``), ids and field
    names stay, so the history still reads."""
    keep = {"survivor": survivor_id in owner_ids, "source": source_id in owner_ids}
    shown = dict(record)
    for side, kept in keep.items():
        if not kept:
            shown[f"{side}_before"] = None
    shown["conflicts"] = {
        name: {side: (value if keep.get(side) else None) for side, value in values.items()}
        for name, values in (record.get("conflicts") or {}).items()
    }
    return shown


def _as_dict(values: ProfileValues) -> dict[str, Any]:
    return {
        "name": values.name,
        "tier": values.tier,
        "language": values.language,
        "attributes": dict(values.attributes),
    }


def _empty(value: Any) -> bool:
    return value is None or value == ""


def check_mergeable(survivor_id: str, source_id: str, *, source_active: bool) -> None:
    if survivor_id == source_id:
        raise MergeRefused("a profile cannot be merged into itself")
    if not source_active:
        raise MergeRefused(f"profile {source_id} was already merged", [survivor_id, source_id])


def plan_merge(survivor: ProfileValues, source: ProfileValues, *, default_tier: str) -> MergePlan:
    conflicts: dict[str, dict[str, Any]] = {}
    filled: list[str] = []
    merged: dict[str, Any] = {}
    for name in SCALARS:
        mine, theirs = getattr(survivor, name), getattr(source, name)
        empty = _empty(mine) or (name == "tier" and mine == default_tier)
        if empty and not _empty(theirs) and theirs != mine:
            merged[name] = theirs
            filled.append(name)
        else:
            merged[name] = mine
            if not _empty(theirs) and theirs != mine:
                conflicts[name] = {"survivor": mine, "source": theirs}
    attributes = dict(survivor.attributes)
    for key, theirs in source.attributes.items():
        if key not in attributes or _empty(attributes[key]):
            attributes[key] = theirs
            filled.append(f"attributes.{key}")
        elif attributes[key] != theirs:
            conflicts[f"attributes.{key}"] = {"survivor": attributes[key], "source": theirs}
    return MergePlan(
        ProfileValues(merged["name"], merged["tier"], merged["language"], attributes),
        conflicts,
        filled,
    )


def plan_unmerge(current: ProfileValues, record: Mapping[str, Any]) -> ProfileValues:
    """The survivor after an unmerge: what the source filled in is taken back,
    unless it was changed since; everything else the survivor has now stays."""
    before = record["survivor_before"]
    source = record["source_before"]
    values: dict[str, Any] = {
        "name": current.name,
        "tier": current.tier,
        "language": current.language,
    }
    attributes = dict(current.attributes)
    for item in record.get("filled", []):
        if item.startswith("attributes."):
            key = item.removeprefix("attributes.")
            if key in attributes and attributes[key] == source["attributes"].get(key):
                if key in before["attributes"]:
                    attributes[key] = before["attributes"][key]
                else:
                    del attributes[key]
        elif values.get(item) == source.get(item):
            values[item] = before.get(item)
    return ProfileValues(values["name"], values["tier"], values["language"], attributes)


def source_after_unmerge(record: Mapping[str, Any]) -> ProfileValues:
    source = record["source_before"]
    return ProfileValues(
        source["name"], source["tier"], source["language"], dict(source["attributes"])
    )
