"""The interfaces the CRM's use cases need, one small Protocol per area; adapters
implement them.

``Store.transaction()`` yields a ``Tx`` (every area's port at once): every read and
write of one use case goes through it and commits (with the use case's outbox events)
at once. ``Store.reader()`` yields one for reads only, outside any transaction. A use
case asks for the areas it uses only (``merging.MergingTx``, ...), so its unit tests
need fakes of those areas alone.

Rows are plain ``dict``s of a table's columns (``Row``): they become the API's
documents as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.crm.domain.identifiers import Identifier
from shared.events import Event

Row = dict[str, Any]


@dataclass(frozen=True)
class Holder:
    """A profile holding some identifiers asked for, with all its identifiers."""

    row: Row
    identifiers: tuple[Identifier, ...]


@dataclass(frozen=True)
class LookupProbe:
    """A self-service lookup's one read: ``holder`` holds the phone; the rest is the
    case's (all None where there is none)."""

    holder: str | None
    profile_id: str | None
    status: str | None
    category: str | None
    updated_at: datetime | None


class ProfilesTx(Protocol):
    def get_profile(self, profile_id: str) -> Row | None: ...
    def insert_profile(self, row: Row) -> None: ...
    def update_profile(self, profile_id: str, values: Mapping[str, Any]) -> None: ...
    def lock_profile(self, profile_id: str) -> None: ...
    def search_profiles(
        self,
        *,
        name_prefix: str | None,
        identifiers: Sequence[Identifier],
        tier: str | None,
        after: str | None,
        limit: int,
    ) -> list[Row]: ...
    def profiles_merged_into(self, profile_id: str) -> list[str]:
        """Every tombstone whose chain ends at this profile."""
        ...

    def delete_profiles(self, profile_ids: Sequence[str]) -> None: ...
    def owners(self, wanted: Sequence[Identifier]) -> dict[Identifier, str]: ...
    def holders(self, wanted: Sequence[Identifier]) -> dict[str, Holder]: ...
    def insert_identifiers(self, profile_id: str, wanted: Sequence[Identifier]) -> None: ...
    def identifiers_of(self, profile_ids: Sequence[str]) -> list[Row]: ...


class OwnedRowsTx(Protocol):
    """A profile's rows by table name ("identifiers", "interactions", "cases",
    "timeline"): what a merge moves, an unmerge moves back, an erasure deletes."""

    def ids_of(self, table: str, profile_id: str) -> list[Any]: ...
    def move(
        self, table: str, ids: Sequence[Any], to_profile: str, *, from_profile: str
    ) -> int: ...
    def rows_of(self, table: str, profile_ids: Sequence[str]) -> list[Row]: ...
    def delete_of(self, table: str, profile_ids: Sequence[str]) -> int: ...


class TimelineTx(Protocol):
    def insert_interaction(self, row: Row) -> None: ...
    def add_timeline(self, row: Row) -> None: ...
    def timeline(
        self, profile_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[Row]: ...


class CasesTx(Protocol):
    def next_sequence(self, name: str) -> int: ...
    def lock_case(self, case_id: str) -> None: ...
    def insert_case(self, row: Row) -> None: ...
    def get_case(self, case_id: str) -> Row | None: ...
    def get_case_by_number(self, case_number: str) -> Row | None: ...
    def case_for_lookup(self, case_number: str, phone: str) -> LookupProbe: ...
    def open_cases_of(self, profile_id: str) -> list[Row]: ...
    def update_case(self, case_id: str, values: Mapping[str, Any]) -> None: ...
    def anonymise_cases(self, profile_ids: Sequence[str]) -> int: ...


class MergesTx(Protocol):
    def insert_merge(self, row: Row) -> None: ...
    def get_merge(self, merge_id: str) -> Row | None: ...
    def update_merge(self, merge_id: str, values: Mapping[str, Any]) -> None: ...
    def merges_of(self, profile_ids: Sequence[str]) -> list[Row]: ...
    def delete_merges_of(self, profile_ids: Sequence[str]) -> None: ...
    def record_candidate(self, a: str, b: str, types: Sequence[str], now: datetime) -> None: ...
    def candidates(self, *, after: int | None, limit: int) -> list[Row]: ...
    def delete_candidates_of(self, profile_ids: Sequence[str]) -> None: ...


class PrivacyTx(Protocol):
    def suppress(self, digests: Sequence[str], until: datetime) -> None: ...
    def suppressed(self, digests: Sequence[str], now: datetime) -> set[str]:
        """The ``digests`` still suppressed at ``now``."""
        ...


class EventsTx(Protocol):
    def emit(self, event: Event) -> None: ...
    def seen_event(self, event_id: str, now: datetime) -> bool:
        """Record a consumed event id; True if it was already there (a duplicate)."""
        ...

    def prune_inbox(self, before: datetime) -> int: ...


class Tx(
    ProfilesTx,
    OwnedRowsTx,
    TimelineTx,
    CasesTx,
    MergesTx,
    PrivacyTx,
    EventsTx,
    Protocol,
):
    """Every area at once: what a store's transaction gives."""


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Tx]: ...
    def reader(self) -> AbstractContextManager[Tx]: ...
    def holders(self, wanted: Sequence[Identifier]) -> dict[str, Holder]:
        """``Tx.holders`` as one read of its own, outside any transaction."""
        ...


class PeerExports(Protocol):
    """What the other services hold on a customer (their export endpoints)."""

    def fetch(self, customer_id: str) -> dict[str, Any]: ...


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int | None = None) -> int | None:
        """None when allowed; otherwise seconds until the caller may retry. ``limit``:
        this key's own, instead of the limiter's."""
        ...

    def over(self, key: str, limit: int) -> int | None:
        """Like ``hit`` but counts nothing: seconds to wait when ``key`` is already at
        ``limit`` in this window, else None."""
        ...


class Compactor(Protocol):
    """Asks for the files (WAL, dead tuples) of deleted rows to be compacted."""

    def request(self) -> None: ...
