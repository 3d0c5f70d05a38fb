"""In-memory fakes of the CRM's per-area ports, for unit tests of use cases.

Each fake inherits the Protocols it stands for, so mypy checks it against them (and a
port that changes breaks the fake, not silently the tests). They keep rows as the
SQL store does (dicts of columns); no transaction semantics: a use case under test
either completes or is refused before it writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.crm.domain.identifiers import Identifier
from services.crm.ports import (
    CasesTx,
    EventsTx,
    Holder,
    LookupProbe,
    MergesTx,
    OwnedRowsTx,
    PrivacyTx,
    ProfilesTx,
    Row,
    TimelineTx,
)
from shared.events import Event

OWNED = ("identifiers", "interactions", "cases", "timeline")
ACTIVE_CASE = ("new", "open", "pending_customer")


class Clock:
    """A clock that moves one second per reading: orderings are strict, never real time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class FakeProfiles(ProfilesTx):
    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Row]] = {name: {} for name in OWNED}
        self.profiles: dict[str, Row] = {}
        self.locked: list[str] = []
        self._ids = itertools.count(1)

    def get_profile(self, profile_id: str) -> Row | None:
        row = self.profiles.get(profile_id)
        return dict(row) if row is not None else None

    def insert_profile(self, row: Row) -> None:
        self.profiles[row["id"]] = dict(row)

    def update_profile(self, profile_id: str, values: Mapping[str, Any]) -> None:
        if profile_id in self.profiles:
            self.profiles[profile_id].update(values)

    def lock_profile(self, profile_id: str) -> None:
        self.locked.append(profile_id)

    def search_profiles(
        self,
        *,
        name_prefix: str | None,
        identifiers: Sequence[Identifier],
        tier: str | None,
        after: str | None,
        limit: int,
    ) -> list[Row]:
        owners = set(self.owners(identifiers).values())
        rows = [
            dict(r)
            for pid, r in sorted(self.profiles.items())
            if r["status"] == "active"
            and (pid in owners or (name_prefix and (r["name_key"] or "").startswith(name_prefix)))
            and (tier is None or r["tier"] == tier)
            and (after is None or pid > after)
        ]
        return rows[:limit]

    def profiles_merged_into(self, profile_id: str) -> list[str]:
        found: list[str] = []
        frontier = [profile_id]
        while frontier:
            frontier = [p for p, r in self.profiles.items() if r["merged_into"] in frontier]
            found += frontier
        return found

    def delete_profiles(self, profile_ids: Sequence[str]) -> None:
        for pid in profile_ids:
            self.profiles.pop(pid, None)

    def owners(self, wanted: Sequence[Identifier]) -> dict[Identifier, str]:
        held = {Identifier(r["type"], r["value"]): r["profile_id"] for r in self._identifiers()}
        return {i: held[i] for i in wanted if i in held}

    def holders(self, wanted: Sequence[Identifier]) -> dict[str, Holder]:
        owners = set(self.owners(wanted).values())
        return {
            pid: Holder(
                dict(self.profiles[pid]),
                tuple(
                    Identifier(r["type"], r["value"])
                    for r in self._identifiers()
                    if r["profile_id"] == pid
                ),
            )
            for pid in sorted(owners)
        }

    def insert_identifiers(self, profile_id: str, wanted: Sequence[Identifier]) -> None:
        for i in wanted:
            row_id = next(self._ids)
            self.tables["identifiers"][row_id] = {
                "id": row_id,
                "profile_id": profile_id,
                "type": i.type,
                "value": i.value,
            }

    def identifiers_of(self, profile_ids: Sequence[str]) -> list[Row]:
        return [dict(r) for r in self._identifiers() if r["profile_id"] in profile_ids]

    def _identifiers(self) -> list[Row]:
        return sorted(self.tables["identifiers"].values(), key=lambda r: r["id"])


class FakeOwnedRows(FakeProfiles, OwnedRowsTx):
    def ids_of(self, table: str, profile_id: str) -> list[Any]:
        return [k for k, r in self.tables[table].items() if r["profile_id"] == profile_id]

    def move(self, table: str, ids: Sequence[Any], to_profile: str, *, from_profile: str) -> int:
        moved = 0
        for key in ids:
            row = self.tables[table].get(key)
            if row is not None and row["profile_id"] == from_profile:
                row["profile_id"] = to_profile
                moved += 1
        return moved

    def rows_of(self, table: str, profile_ids: Sequence[str]) -> list[Row]:
        return [dict(r) for r in self.tables[table].values() if r["profile_id"] in profile_ids]

    def delete_of(self, table: str, profile_ids: Sequence[str]) -> int:
        gone = [k for k, r in self.tables[table].items() if r["profile_id"] in profile_ids]
        for key in gone:
            del self.tables[table][key]
        return len(gone)


class FakeTimeline(FakeOwnedRows, TimelineTx):
    def insert_interaction(self, row: Row) -> None:
        self.tables["interactions"][row["id"]] = dict(row)

    def add_timeline(self, row: Row) -> None:
        row_id = next(self._ids)
        self.tables["timeline"][row_id] = {"id": row_id, **row}

    def timeline(
        self, profile_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[Row]:
        rows = sorted(
            (r for r in self.tables["timeline"].values() if r["profile_id"] == profile_id),
            key=lambda r: (r["at"], r["id"]),
            reverse=True,
        )
        if before is not None:
            rows = [r for r in rows if (r["at"], r["id"]) < before]
        return [dict(r) for r in rows[:limit]]

    def kinds(self, profile_id: str) -> list[str]:
        return [r["kind"] for r in self.rows_of("timeline", [profile_id])]


class FakeEvents(EventsTx):
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.inbox: dict[str, datetime] = {}

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def seen_event(self, event_id: str, now: datetime) -> bool:
        if event_id in self.inbox:
            return True
        self.inbox[event_id] = now
        return False

    def prune_inbox(self, before: datetime) -> int:
        old = [k for k, at in self.inbox.items() if at < before]
        for key in old:
            del self.inbox[key]
        return len(old)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class FakeMerges(MergesTx):
    def __init__(self) -> None:
        self.merges: dict[str, Row] = {}
        self.candidate_pairs: dict[tuple[str, str], Row] = {}

    def insert_merge(self, row: Row) -> None:
        self.merges[row["id"]] = dict(row)

    def get_merge(self, merge_id: str) -> Row | None:
        row = self.merges.get(merge_id)
        return dict(row) if row is not None else None

    def update_merge(self, merge_id: str, values: Mapping[str, Any]) -> None:
        self.merges[merge_id].update(values)

    def merges_of(self, profile_ids: Sequence[str]) -> list[Row]:
        return sorted(
            (
                dict(m)
                for m in self.merges.values()
                if m["survivor_id"] in profile_ids or m["source_id"] in profile_ids
            ),
            key=lambda m: m["at"],
        )

    def delete_merges_of(self, profile_ids: Sequence[str]) -> None:
        for row in self.merges_of(profile_ids):
            del self.merges[row["id"]]

    def record_candidate(self, a: str, b: str, types: Sequence[str], now: datetime) -> None:
        pair = (min(a, b), max(a, b))
        row = self.candidate_pairs.setdefault(
            pair,
            {
                "id": len(self.candidate_pairs) + 1,
                "profile_a": pair[0],
                "profile_b": pair[1],
                "first_seen": now,
                "occurrences": 0,
            },
        )
        row.update(identifier_types=sorted(set(types)), last_seen=now)
        row["occurrences"] += 1

    def candidates(self, *, after: int | None, limit: int) -> list[Row]:
        rows = sorted(self.candidate_pairs.values(), key=lambda r: r["id"])
        return [dict(r) for r in rows if after is None or r["id"] > after][:limit]

    def delete_candidates_of(self, profile_ids: Sequence[str]) -> None:
        for pair in [p for p in self.candidate_pairs if set(p) & set(profile_ids)]:
            del self.candidate_pairs[pair]


class FakeMergingTx(FakeTimeline, FakeMerges, FakeEvents):
    """``merging.MergingTx``: profiles, owned rows, merges, timeline, events."""

    def __init__(self) -> None:
        FakeTimeline.__init__(self)
        FakeMerges.__init__(self)
        FakeEvents.__init__(self)


class FakeCasesTx(FakeTimeline, FakeEvents, CasesTx):
    """``cases.CasesWriteTx``: profiles, cases, timeline, events."""

    def __init__(self) -> None:
        FakeTimeline.__init__(self)
        FakeEvents.__init__(self)
        self.counters: dict[str, int] = {}

    def next_sequence(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def lock_case(self, case_id: str) -> None:
        self.locked.append(case_id)

    def insert_case(self, row: Row) -> None:
        self.tables["cases"][row["id"]] = dict(row)

    def get_case(self, case_id: str) -> Row | None:
        row = self.tables["cases"].get(case_id)
        return dict(row) if row is not None else None

    def get_case_by_number(self, case_number: str) -> Row | None:
        found = [r for r in self.tables["cases"].values() if r["case_number"] == case_number]
        return dict(found[0]) if found else None

    def case_for_lookup(self, case_number: str, phone: str) -> LookupProbe:
        case = self.get_case_by_number(case_number) or {}
        holder = self.owners([Identifier("phone", phone)]).get(Identifier("phone", phone))
        return LookupProbe(
            holder,
            case.get("profile_id"),
            case.get("status"),
            case.get("category"),
            case.get("updated_at"),
        )

    def open_cases_of(self, profile_id: str) -> list[Row]:
        return [
            dict(r)
            for r in self.tables["cases"].values()
            if r["profile_id"] == profile_id and r["status"] in ACTIVE_CASE
        ]

    def update_case(self, case_id: str, values: Mapping[str, Any]) -> None:
        self.tables["cases"][case_id].update(values)

    def anonymise_cases(self, profile_ids: Sequence[str]) -> int:
        rows = [r for r in self.tables["cases"].values() if r["profile_id"] in profile_ids]
        for row in rows:
            row.update(profile_id=None, subject=None, description=None, history=[])
        return len(rows)


class FakePrivacy(PrivacyTx):
    def __init__(self) -> None:
        self.suppressions: dict[str, datetime] = {}

    def suppress(self, digests: Sequence[str], until: datetime) -> None:
        self.suppressions.update(dict.fromkeys(digests, until))

    def suppressed(self, digests: Sequence[str], now: datetime) -> set[str]:
        return {d for d in digests if d in self.suppressions and self.suppressions[d] > now}


class FakeResolveTx(FakeMergingTx, FakePrivacy):
    """``profiles.ResolveTx``: profiles, timeline, events, suppressions, candidates."""

    def __init__(self) -> None:
        FakeMergingTx.__init__(self)
        FakePrivacy.__init__(self)
