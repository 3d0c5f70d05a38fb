"""What every CRM use case shares: the retry loop around a transaction, the
context a use case decides in (config, clock, keys), and the profile reads all
areas make (the live profile, its lock, its view).

Every use case runs in one store transaction together with its outbox events;
when a concurrent writer wins a race (``Contention``) the whole use case is
retried, and on the retry it sees the winner's rows. A use case's work is a named
function of the transaction (``merging.merge_in(tx, ctx, ...)``): the service's
methods only run it, so unit tests call it with a fake of the areas it needs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from services.crm.config import CrmConfig
from services.crm.domain.errors import ProfileMoved, ProfileNotFound
from services.crm.domain.identifiers import Identifier
from services.crm.domain.merge import ProfileValues
from services.crm.errors import Contention
from services.crm.ports import (
    Compactor,
    EventsTx,
    PeerExports,
    ProfilesTx,
    RateLimiter,
    Row,
    Store,
    TimelineTx,
    Tx,
)
from shared.events import Event

T = TypeVar("T")
MAX_ATTEMPTS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Context:
    """What a use case decides with besides its transaction."""

    config: CrmConfig
    clock: Callable[[], datetime] = utcnow

    def event(self, tx: EventsTx, type_: str, data: Mapping[str, Any]) -> None:
        tx.emit(Event.new(type_, data, source="crm"))

    def keyed(self, text: str) -> str:
        """HMAC-SHA256 under CRM_HASH_KEY: what is kept of personal values that must be
        recognised again (erased identifiers, a lookup's caller) but never read."""
        return hmac.new(self.config.hash_key, text.encode(), hashlib.sha256).hexdigest()

    def digest(self, identifier: Identifier) -> str:
        return self.keyed(f"{identifier.type}:{identifier.value}")

    def normalise(self, pairs: Sequence[Mapping[str, str]]) -> list[Identifier]:
        return self.config.identifiers.normalise_all((p["type"], p["value"]) for p in pairs)

    def timeline(
        self,
        tx: TimelineTx,
        profile_id: str,
        kind: str,
        summary: str,
        *,
        channel: str | None = None,
        refs: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        tx.add_timeline(
            {
                "profile_id": profile_id,
                "at": at or self.clock(),
                "kind": kind,
                "channel": channel,
                "summary": summary[:2000],
                "refs": dict(refs or {}),
            }
        )


# -- the profile reads every area makes ------------------------------------------------
def live(tx: ProfilesTx, profile_id: str) -> Row:
    """The profile, or ProfileMoved to the end of its merge chain."""
    row = tx.get_profile(profile_id)
    if row is None:
        raise ProfileNotFound(f"no profile {profile_id}")
    hops = 0
    while row["status"] == "merged" and row["merged_into"] and hops < 50:
        nxt = tx.get_profile(row["merged_into"])
        if nxt is None:
            raise ProfileNotFound(f"no profile {profile_id}")
        row, hops = nxt, hops + 1
    if row["id"] != profile_id:
        raise ProfileMoved(profile_id, row["id"])
    return row


def lock_active(tx: ProfilesTx, profile_id: str) -> Row | None:
    """The profile, locked, if it is still active once the lock is ours."""
    tx.lock_profile(profile_id)
    row = tx.get_profile(profile_id)
    return row if row is not None and row["status"] == "active" else None


def live_or_survivor(tx: ProfilesTx, profile_id: str) -> Row:
    """For writes: a tombstone's id stands for its survivor."""
    try:
        return live(tx, profile_id)
    except ProfileMoved as moved:
        row = tx.get_profile(moved.survivor_id)
        assert row is not None
        return row


def locked(tx: ProfilesTx, profile_id: str, *, follow: bool = False) -> Row:
    """The live profile, read under its writers' lock. Read before the lock, a merge
    committing in between would let the write land on the merged-away tombstone,
    where the survivor's view, timeline and lookups never see it. ``follow``: a
    tombstone's id stands for its survivor (locked in its place)."""
    for _ in range(MAX_ATTEMPTS):
        row = live_or_survivor(tx, profile_id) if follow else live(tx, profile_id)
        fresh = lock_active(tx, row["id"])
        if fresh is not None:
            return fresh
        # Merged or erased before the lock was ours: look again from the id given.
    raise Contention(f"profile {profile_id} kept changing")


def view(tx: ProfilesTx, row: Mapping[str, Any], held: Sequence[Identifier] | None = None) -> Row:
    if held is None:
        held = [Identifier(i["type"], i["value"]) for i in tx.identifiers_of([row["id"]])]
    return view_of(row, held)


def view_of(row: Mapping[str, Any], held: Sequence[Identifier]) -> Row:
    return {
        "id": row["id"],
        "name": row["name"],
        "tier": row["tier"],
        "language": row["language"],
        "attributes": row["attributes"] or {},
        "identifiers": [{"type": i.type, "value": i.value} for i in held],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def values_of(row: Mapping[str, Any]) -> ProfileValues:
    return ProfileValues(row["name"], row["tier"], row["language"], row["attributes"] or {})


@dataclass
class UseCases:
    """The service's state and plumbing; each area's use cases are a subclass."""

    store: Store
    config: CrmConfig = field(default_factory=CrmConfig)
    peers: Mapping[str, PeerExports] = field(default_factory=dict)
    limiter: RateLimiter | None = None
    clock: Callable[[], datetime] = utcnow
    compactor: Compactor | None = None

    @property
    def ctx(self) -> Context:
        return Context(self.config, self.clock)

    def run(self, work: Callable[[Tx], T]) -> T:
        """``work`` in one transaction, retried from scratch when a race was lost."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.store.transaction() as tx:
                    return work(tx)
            except Contention:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Tx], T]) -> T:
        """Reads only: no transaction (no BEGIN/COMMIT round trips), nothing to retry."""
        with self.store.reader() as tx:
            return work(tx)
