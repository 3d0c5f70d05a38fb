"""Merging: one customer's two profiles into one (and back), and the candidates
that resolve requests named together."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from services.crm.common import Context, UseCases, live, values_of, view
from services.crm.domain.errors import MergeNotFound, MergeRefused, ProfileNotFound
from services.crm.domain.identifiers import name_key
from services.crm.domain.merge import (
    ProfileValues,
    check_mergeable,
    plan_merge,
    plan_unmerge,
    source_after_unmerge,
)
from services.crm.ports import EventsTx, MergesTx, OwnedRowsTx, ProfilesTx, Row, TimelineTx

# What a merge moves from the source to the survivor (and an unmerge moves back).
MOVABLE = ("identifiers", "interactions", "cases", "timeline")


class MergingTx(ProfilesTx, OwnedRowsTx, MergesTx, TimelineTx, EventsTx, Protocol):
    """The areas a merge and an unmerge touch."""


def _profile_fields(values: ProfileValues) -> dict[str, Any]:
    return {
        "name": values.name,
        "tier": values.tier,
        "language": values.language,
        "attributes": dict(values.attributes),
    }


def _profile_updated(
    tx: EventsTx,
    ctx: Context,
    profile_id: str,
    after: Mapping[str, Any],
    before: Mapping[str, Any],
) -> None:
    changed = [k for k in ("name", "tier", "language", "attributes") if after[k] != before[k]]
    ctx.event(
        tx,
        "crm.profile.updated",
        {
            "profile_id": profile_id,
            "tier": after["tier"],
            "language": after["language"],
            "changed": changed,
        },
    )


def _lock_pair(tx: MergingTx, survivor_id: str, source_id: str) -> tuple[Row, Row]:
    """Both profiles, checked mergeable before and after their locks."""
    live(tx, survivor_id)  # unknown: 404; a tombstone: 308 to its survivor
    source = tx.get_profile(source_id)
    if source is None:
        raise ProfileNotFound(f"no profile {source_id}")
    check_mergeable(survivor_id, source_id, source_active=source["status"] == "active")
    for pid in sorted((survivor_id, source_id)):  # one lock order: no deadlock
        tx.lock_profile(pid)
    # Re-read under the locks: a concurrent merge may have taken either side.
    fresh_survivor, fresh_source = tx.get_profile(survivor_id), tx.get_profile(source_id)
    if fresh_survivor is None or fresh_source is None:
        raise MergeRefused("a concurrent change got there first; retry")
    active = fresh_source["status"] == "active" and fresh_survivor["status"] == "active"
    check_mergeable(survivor_id, source_id, source_active=active)
    return fresh_survivor, fresh_source


def merge_in(
    tx: MergingTx, ctx: Context, survivor_id: str, source_id: str, *, dry_run: bool
) -> Row:
    """Merge ``source_id`` into ``survivor_id``; ``dry_run``: what it would do, nothing done."""
    survivor, source = _lock_pair(tx, survivor_id, source_id)
    plan = plan_merge(values_of(survivor), values_of(source), default_tier=ctx.config.default_tier)
    moved = {table: tx.ids_of(table, source_id) for table in MOVABLE}
    merge_id = "m-" + uuid.uuid4().hex
    result: Row = {
        "merge_id": None if dry_run else merge_id,
        "survivor_id": survivor_id,
        "source_id": source_id,
        "dry_run": dry_run,
        "moved": {table: len(ids) for table, ids in moved.items()},
        "conflicts": plan.conflicts,
        "filled": plan.filled,
    }
    after = _profile_fields(plan.result)
    if dry_run:
        preview = view(tx, {**survivor, **after})
        preview["identifiers"] += [
            {"type": i["type"], "value": i["value"]} for i in tx.identifiers_of([source_id])
        ]
        result["profile"] = preview
        return result
    now = ctx.clock()
    for table, ids in moved.items():
        tx.move(table, ids, survivor_id, from_profile=source_id)
    tx.update_profile(
        survivor_id, {**after, "name_key": name_key(plan.result.name), "updated_at": now}
    )
    tx.update_profile(
        source_id, {"status": "merged", "merged_into": survivor_id, "updated_at": now}
    )
    record = plan.record(values_of(survivor), values_of(source))
    record["moved"] = moved
    tx.insert_merge(
        {
            "id": merge_id,
            "survivor_id": survivor_id,
            "source_id": source_id,
            "status": "merged",
            "at": now,
            "unmerged_at": None,
            "record": record,
        }
    )
    tx.delete_candidates_of([source_id])
    ctx.timeline(
        tx,
        survivor_id,
        "profile.merged",
        f"profile {source_id} merged into this one",
        refs={"merge_id": merge_id, "source_id": source_id},
    )
    ctx.event(
        tx,
        "crm.profile.merged",
        {
            "survivor_id": survivor_id,
            "source_id": source_id,
            "merge_id": merge_id,
            "tier": plan.result.tier,
        },
    )
    if plan.result.tier != survivor["tier"] or plan.result.language != survivor["language"]:
        _profile_updated(tx, ctx, survivor_id, after, survivor)
    row = tx.get_profile(survivor_id)
    assert row is not None
    result["profile"] = view(tx, row)
    return result


def _unmergeable(tx: MergingTx, survivor_id: str, merge_id: str) -> tuple[Row, Row, Row]:
    """(merge, survivor, source), locked, or why this merge cannot be undone now."""
    merge = tx.get_merge(merge_id)
    if merge is None or merge["survivor_id"] != survivor_id:
        live(tx, survivor_id)  # unknown: 404; a tombstone: 308 as elsewhere
        raise MergeNotFound(f"profile {survivor_id} has no merge {merge_id}")
    survivor = tx.get_profile(survivor_id)
    if survivor is None:
        raise ProfileNotFound(f"no profile {survivor_id}")
    if merge["status"] != "merged":
        raise MergeRefused(f"merge {merge_id} was already undone", [survivor_id])
    source_id = merge["source_id"]
    for pid in sorted((survivor_id, source_id)):
        tx.lock_profile(pid)
    source = tx.get_profile(source_id)
    survivor = tx.get_profile(survivor_id) or survivor
    if survivor["status"] == "merged":
        # Its own merge is named, so redirecting to the later survivor would only
        # lead to a 404 there: say what to undo first.
        later = [
            m["id"]
            for m in tx.merges_of([survivor_id])
            if m["source_id"] == survivor_id and m["status"] == "merged"
        ]
        into = str(survivor["merged_into"])
        raise MergeRefused(
            f"profile {survivor_id} has since been merged into {into}: unmerge that"
            + (f" merge ({later[-1]})" if later else " merge")
            + f" on {into} first, then this one",
            [survivor_id, into],
        )
    if source is None or source["merged_into"] != survivor_id:
        raise MergeRefused(f"profile {source_id} is no longer a tombstone of this merge")
    return merge, survivor, source


def unmerge_in(tx: MergingTx, ctx: Context, survivor_id: str, merge_id: str) -> Row:
    """Undo a merge: the source comes back with everything it brought."""
    merge, survivor, source = _unmergeable(tx, survivor_id, merge_id)
    source_id = merge["source_id"]
    now = ctx.clock()
    record = merge["record"]
    for table, ids in record["moved"].items():
        tx.move(table, ids, source_id, from_profile=survivor_id)
    restored = plan_unmerge(values_of(survivor), record)
    back = source_after_unmerge(record)
    after = _profile_fields(restored)
    tx.update_profile(
        survivor_id, {**after, "name_key": name_key(restored.name), "updated_at": now}
    )
    tx.update_profile(
        source_id,
        {
            "status": "active",
            "merged_into": None,
            "name": back.name,
            "name_key": name_key(back.name),
            "tier": back.tier,
            "language": back.language,
            "attributes": dict(back.attributes),
            "updated_at": now,
        },
    )
    tx.update_merge(merge_id, {"status": "unmerged", "unmerged_at": now})
    for pid, other in ((survivor_id, source_id), (source_id, survivor_id)):
        ctx.timeline(
            tx,
            pid,
            "profile.unmerged",
            f"merge of {source_id} into {survivor_id} undone",
            refs={"merge_id": merge_id, "other_id": other},
        )
    ctx.event(
        tx,
        "crm.profile.unmerged",
        {"survivor_id": survivor_id, "source_id": source_id, "merge_id": merge_id},
    )
    if after["tier"] != survivor["tier"] or after["language"] != survivor["language"]:
        _profile_updated(tx, ctx, survivor_id, after, survivor)
    rows = [tx.get_profile(survivor_id), tx.get_profile(source_id)]
    return {
        "merge_id": merge_id,
        "survivor": view(tx, rows[0] or {}),
        "source": view(tx, rows[1] or {}),
    }


def candidates_in(tx: MergesTx, *, after: int | None, limit: int) -> list[Row]:
    return [
        {
            "id": r["id"],
            "profile_ids": [r["profile_a"], r["profile_b"]],
            "identifier_types": r["identifier_types"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "occurrences": r["occurrences"],
        }
        for r in tx.candidates(after=after, limit=limit)
    ]


class Merging(UseCases):
    def merge(self, survivor_id: str, source_id: str, *, dry_run: bool) -> Row:
        ctx = self.ctx
        return self.run(lambda tx: merge_in(tx, ctx, survivor_id, source_id, dry_run=dry_run))

    def unmerge(self, survivor_id: str, merge_id: str) -> Row:
        ctx = self.ctx
        return self.run(lambda tx: unmerge_in(tx, ctx, survivor_id, merge_id))

    def merge_candidates(self, *, after: int | None, limit: int) -> list[Row]:
        return self.read(lambda tx: candidates_in(tx, after=after, limit=limit))
