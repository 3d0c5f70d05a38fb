"""Profiles: resolve by identifiers, create, read, change, search, and the timeline
(its reads, and identity/routing events projected onto it)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from services.crm.common import Context, UseCases, live, lock_active, locked, view, view_of
from services.crm.domain.errors import (
    IdentifierTaken,
    InvalidIdentifier,
    ProfileNotFound,
    ResolutionConflict,
)
from services.crm.domain.identifiers import Identifier, name_key
from services.crm.domain.resolution import Outcome, decide
from services.crm.domain.timeline import project
from services.crm.errors import Contention
from services.crm.ports import EventsTx, PrivacyTx, ProfilesTx, Row, TimelineTx, Tx
from shared.events import Event


class ProfilesWriteTx(ProfilesTx, TimelineTx, EventsTx, Protocol):
    """What writing a profile touches."""


class ResolveTx(ProfilesWriteTx, PrivacyTx, Protocol):
    """Resolving also records merge candidates and checks suppressions."""

    def record_candidate(self, a: str, b: str, types: Sequence[str], now: datetime) -> None: ...


@dataclass(frozen=True)
class Resolved:
    """What ``resolve_in`` decided: a profile (``created`` or not), or the ids of the
    profiles the identifiers name together (recorded as a merge candidate)."""

    profile: Row | None = None
    created: bool = False
    conflict: tuple[str, ...] = ()


def insert_profile(
    tx: ProfilesWriteTx, ctx: Context, idents: Sequence[Identifier], fields: Mapping[str, Any]
) -> Row:
    now = ctx.clock()
    name = fields.get("name")
    profile_id = "p-" + uuid.uuid4().hex
    row: Row = {
        "id": profile_id,
        "status": "active",
        "merged_into": None,
        "name": name,
        "name_key": name_key(name),
        "tier": fields.get("tier") or ctx.config.default_tier,
        "language": fields.get("language"),
        "attributes": dict(fields.get("attributes") or {}),
        "created_at": now,
        "updated_at": now,
    }
    tx.insert_profile(row)
    tx.insert_identifiers(profile_id, idents)
    kinds = ", ".join(sorted({i.type for i in idents})) or "no identifiers"
    ctx.timeline(tx, profile_id, "profile.created", f"profile created ({kinds})")
    ctx.event(
        tx,
        "crm.profile.created",
        {"profile_id": row["id"], "tier": row["tier"], "language": row["language"]},
    )
    return row


def create_in(
    tx: ProfilesWriteTx, ctx: Context, idents: Sequence[Identifier], fields: Mapping[str, Any]
) -> Row:
    owners = tx.owners(idents)
    if owners:
        others = sorted(set(owners.values()))
        raise IdentifierTaken(f"identifier already belongs to profile {', '.join(others)}", others)
    return view(tx, insert_profile(tx, ctx, idents, fields))


def resolve_in(
    tx: ResolveTx,
    ctx: Context,
    idents: Sequence[Identifier],
    *,
    create: bool,
    fields: Mapping[str, Any],
) -> Resolved:
    holders = tx.holders(idents)
    wanted = set(idents)
    owners = {i: pid for pid, h in holders.items() for i in h.identifiers if i in wanted}
    decision = decide(idents, owners, create=create)
    if decision.outcome is Outcome.CONFLICT:
        types = [i.type for i in idents if i in owners]
        ids = decision.profile_ids
        for other in ids[1:]:
            tx.record_candidate(ids[0], other, types, ctx.clock())
        return Resolved(conflict=ids)
    if decision.outcome is Outcome.NOT_FOUND:
        raise ProfileNotFound("no profile holds these identifiers")
    if decision.outcome is Outcome.RESOLVED:
        assert decision.profile_id is not None
        if not decision.missing:  # the hot path: one query in all
            held = holders[decision.profile_id]
            return Resolved(view(tx, held.row, held.identifiers))
        # Under the profile's lock: a merge taking it since the read is retried
        # (the identifiers then resolve to the survivor), not written past.
        fresh = lock_active(tx, decision.profile_id)
        if fresh is None:
            raise Contention(f"profile {decision.profile_id} changed meanwhile")
        # A recently erased customer's identifier is not attached in passing (it
        # may be a recycled number): only PATCH, an explicit act, attaches it.
        digests = {ctx.digest(i): i for i in decision.missing}
        blocked = tx.suppressed(list(digests), ctx.clock())
        missing = [i for d, i in digests.items() if d not in blocked]
        if missing:
            tx.insert_identifiers(decision.profile_id, missing)
            kinds = ", ".join(sorted({i.type for i in missing}))
            ctx.timeline(tx, decision.profile_id, "profile.identifiers_added", f"added {kinds}")
        return Resolved(view(tx, fresh))
    # ``create`` is the explicit ask: a returning customer starts afresh, with no
    # link to the erased profile. Suppression guards attaching, above, not this.
    row = insert_profile(tx, ctx, idents, fields)
    return Resolved(view(tx, row), created=True)


def update_in(
    tx: ProfilesWriteTx, ctx: Context, profile_id: str, changes: Mapping[str, Any]
) -> Row:
    row = locked(tx, profile_id)
    values: dict[str, Any] = {}
    for name in ("name", "tier", "language"):
        if name in changes and changes[name] != row[name]:
            values[name] = changes[name]
    if "name" in values:
        values["name_key"] = name_key(values["name"])
    if "attributes" in changes:
        attributes = dict(row["attributes"] or {})
        for key, value in changes["attributes"].items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if attributes != (row["attributes"] or {}):
            values["attributes"] = attributes
    added = []
    if changes.get("identifiers"):
        idents = ctx.normalise(changes["identifiers"])
        owners = tx.owners(idents)
        others = sorted({p for p in owners.values() if p != profile_id})
        if others:
            raise IdentifierTaken(
                f"identifier already belongs to profile {', '.join(others)}", others
            )
        added = [i for i in idents if i not in owners]
        tx.insert_identifiers(profile_id, added)
    changed = sorted(k for k in values if k != "name_key")
    if added:
        changed.append("identifiers")
    if values:
        values["updated_at"] = ctx.clock()
        tx.update_profile(profile_id, values)
    if changed:
        row = {**row, **values}
        ctx.timeline(tx, profile_id, "profile.updated", f"updated {', '.join(changed)}")
        ctx.event(
            tx,
            "crm.profile.updated",
            {
                "profile_id": profile_id,
                "tier": row["tier"],
                "language": row["language"],
                "changed": changed,
            },
        )
    return view(tx, row)


def project_in(tx: ProfilesWriteTx, ctx: Context, event: Event, customer_id: str) -> bool:
    item = project(event.type, event.data)
    assert item is not None
    try:
        # Locked before anything is written: a merge committing after the
        # read would otherwise leave the item on the tombstone's timeline.
        profile = locked(tx, customer_id, follow=True)
    except ProfileNotFound:
        return False  # not a customer we know (or erased): nothing to show
    if tx.seen_event(event.id, ctx.clock()):
        return False
    ctx.timeline(
        tx,
        profile["id"],
        item.kind,
        item.summary,
        channel=item.channel,
        refs={**item.refs, "event_id": event.id},
        at=_parse_time(event.occurred_at),
    )
    return True


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Profiles(UseCases):
    def normalise(self, pairs: Sequence[Mapping[str, str]]) -> list[Identifier]:
        return self.ctx.normalise(pairs)

    def create_profile(
        self, identifiers: Sequence[Mapping[str, str]], fields: Mapping[str, Any]
    ) -> Row:
        """Explicit creation: refuses identifiers held by another profile (409)."""
        ctx = self.ctx
        idents = ctx.normalise(identifiers)
        return self.run(lambda tx: create_in(tx, ctx, idents, fields))

    def resolve(
        self,
        identifiers: Sequence[Mapping[str, str]],
        *,
        create: bool,
        fields: Mapping[str, Any] | None = None,
    ) -> tuple[Row, bool]:
        """(profile, created). Two profiles -> ResolutionConflict, recorded as a candidate."""
        ctx = self.ctx
        idents = ctx.normalise(identifiers)
        if not idents:
            raise InvalidIdentifier("at least one identifier is required")
        # The common case - every identifier known, all on one profile - is one
        # read without a transaction; anything else takes the transactional path.
        holders = self.store.holders(idents)
        if len(holders) == 1:
            [held] = holders.values()
            if set(idents) <= set(held.identifiers):
                return view_of(held.row, held.identifiers), False
        # The conflict is raised after the transaction: the candidate it recorded stays.
        resolved = self.run(
            lambda tx: resolve_in(tx, ctx, idents, create=create, fields=fields or {})
        )
        if resolved.conflict:
            raise ResolutionConflict(
                "the identifiers belong to different profiles: "
                f"{' and '.join(resolved.conflict)} (a merge candidate)",
                resolved.conflict,
            )
        assert resolved.profile is not None
        return resolved.profile, resolved.created

    def get_profile(self, profile_id: str) -> Row:
        return self.read(lambda tx: view(tx, live(tx, profile_id)))

    def update_profile(self, profile_id: str, changes: Mapping[str, Any]) -> Row:
        ctx = self.ctx
        return self.run(lambda tx: update_in(tx, ctx, profile_id, changes))

    def search(
        self, *, q: str | None, tier: str | None, after: str | None, limit: int
    ) -> list[Row]:
        term = (q or "").strip()
        idents = self.config.identifiers.candidates(term) if term else []

        def found(tx: ProfilesTx) -> list[Row]:
            rows = tx.search_profiles(
                name_prefix=name_key(term), identifiers=idents, tier=tier, after=after, limit=limit
            )
            return [view(tx, r) for r in rows]

        return self.read(found)

    def timeline(
        self, profile_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[Row]:
        def items(tx: Tx) -> list[Row]:
            live(tx, profile_id)
            return tx.timeline(profile_id, before=before, limit=limit)

        return self.read(items)

    def project_event(self, event: Event) -> bool:
        """Put an identity/routing event on its customer's timeline, exactly once."""
        item = project(event.type, event.data)
        customer_id = event.data.get("customer_id")
        if item is None or not isinstance(customer_id, str) or not customer_id:
            return False
        ctx = self.ctx
        return self.run(lambda tx: project_in(tx, ctx, event, customer_id))

    def prune_inbox(self, before: datetime) -> int:
        """Forget consumed event ids older than any redelivery could be."""
        return self.run(lambda tx: tx.prune_inbox(before))
