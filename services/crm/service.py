"""The CRM's use cases: load through the ports, decide in the domain, save, emit.

Every use case runs in one store transaction together with its outbox events;
when a concurrent writer wins a race (``Contention``) the whole use case is
retried, and on the retry it sees the winner's rows.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from services.crm.domain import cases as case_rules
from services.crm.domain.case_numbers import new_case_number
from services.crm.domain.classification import Classifier
from services.crm.domain.errors import (
    CaseNotFound,
    IdentifierTaken,
    InvalidIdentifier,
    MergeNotFound,
    MergeRefused,
    ProfileMoved,
    ProfileNotFound,
    ResolutionConflict,
    UnknownCategory,
)
from services.crm.domain.identifiers import Identifier, IdentifierPolicy, name_key
from services.crm.domain.merge import (
    ProfileValues,
    check_mergeable,
    plan_merge,
    plan_unmerge,
    record_for_export,
    source_after_unmerge,
)
from services.crm.domain.resolution import Outcome, decide
from services.crm.domain.timeline import project
from services.crm.ports import Contention, PeerExports, RateLimiter, Store, Tx
from shared.events import Event

T = TypeVar("T")
MAX_ATTEMPTS = 8
MOVABLE = ("identifiers", "interactions", "cases", "timeline")


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many lookups; retry in {retry_after} s")
        self.retry_after = retry_after


class LookupFailed(CaseNotFound):
    """One answer whichever part was wrong, so nothing can be enumerated."""

    def __init__(self) -> None:
        super().__init__("no case matches this case number and phone number")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CrmConfig:
    identifiers: IdentifierPolicy = field(default_factory=IdentifierPolicy)
    cases: case_rules.CasePolicy = field(default_factory=case_rules.CasePolicy)
    classifier: Classifier = field(default_factory=Classifier.from_file)
    default_tier: str = "default"
    suppression: timedelta = timedelta(days=30)
    keep_anonymised_cases: bool = False
    hash_key: bytes = b"crm-dev-hash-key"
    # Self-service lookups per minute by one API client over all the callers it names
    # (the per-caller budget is the limiter's own).
    lookup_client_limit: int = 600
    # Failed lookups per minute by one API client, whatever callers it names.
    lookup_miss_limit: int = 60
    case_numbers: Callable[[], str] = new_case_number


@dataclass
class CrmService:
    store: Store
    config: CrmConfig = field(default_factory=CrmConfig)
    peers: Mapping[str, PeerExports] = field(default_factory=dict)
    limiter: RateLimiter | None = None
    clock: Callable[[], datetime] = utcnow

    # -- plumbing -------------------------------------------------------------------
    def _run(self, work: Callable[[Tx], T]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.store.transaction() as tx:
                    return work(tx)
            except Contention:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Tx], T]) -> T:
        """Reads only: no transaction (no BEGIN/COMMIT round trips), nothing to retry."""
        with self.store.reader() as tx:
            return work(tx)

    def _event(self, tx: Tx, type_: str, data: Mapping[str, Any]) -> None:
        tx.emit(Event.new(type_, data, source="crm"))

    def _keyed(self, text: str) -> str:
        """HMAC-SHA256 under CRM_HASH_KEY: what is kept of personal values that must be
        recognised again (erased identifiers, a lookup's caller) but never read."""
        return hmac.new(self.config.hash_key, text.encode(), hashlib.sha256).hexdigest()

    def _digest(self, identifier: Identifier) -> str:
        return self._keyed(f"{identifier.type}:{identifier.value}")

    def normalise(self, pairs: Sequence[Mapping[str, str]]) -> list[Identifier]:
        return self.config.identifiers.normalise_all((p["type"], p["value"]) for p in pairs)

    @staticmethod
    def _live(tx: Tx, profile_id: str) -> dict[str, Any]:
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

    def _locked(self, tx: Tx, profile_id: str, *, follow: bool = False) -> dict[str, Any]:
        """The live profile, read under its writers' lock. Read before the lock, a merge
        committing in between would let the write land on the merged-away tombstone,
        where the survivor's view, timeline and lookups never see it. ``follow``: a
        tombstone's id stands for its survivor (locked in its place)."""
        for _ in range(MAX_ATTEMPTS):
            row = self._live_or_survivor(tx, profile_id) if follow else self._live(tx, profile_id)
            fresh = self._lock_active(tx, row["id"])
            if fresh is not None:
                return fresh
            # Merged or erased before the lock was ours: look again from the id given.
        raise Contention(f"profile {profile_id} kept changing")

    @staticmethod
    def _lock_active(tx: Tx, profile_id: str) -> dict[str, Any] | None:
        """The profile, locked, if it is still active once the lock is ours."""
        tx.lock_profile(profile_id)
        row = tx.get_profile(profile_id)
        return row if row is not None and row["status"] == "active" else None

    def _live_or_survivor(self, tx: Tx, profile_id: str) -> dict[str, Any]:
        """For writes: a tombstone's id stands for its survivor."""
        try:
            return self._live(tx, profile_id)
        except ProfileMoved as moved:
            row = tx.get_profile(moved.survivor_id)
            assert row is not None
            return row

    def _view(
        self, tx: Tx, row: Mapping[str, Any], held: Sequence[Identifier] | None = None
    ) -> dict[str, Any]:
        if held is None:
            held = [Identifier(i["type"], i["value"]) for i in tx.identifiers_of([row["id"]])]
        return self._view_of(row, held)

    @staticmethod
    def _view_of(row: Mapping[str, Any], held: Sequence[Identifier]) -> dict[str, Any]:
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

    @staticmethod
    def _values(row: Mapping[str, Any]) -> ProfileValues:
        return ProfileValues(row["name"], row["tier"], row["language"], row["attributes"] or {})

    def _timeline(
        self,
        tx: Tx,
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

    # -- profiles -------------------------------------------------------------------
    def _insert_profile(
        self, tx: Tx, idents: Sequence[Identifier], fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        now = self.clock()
        name = fields.get("name")
        profile_id = "p-" + uuid.uuid4().hex
        row: dict[str, Any] = {
            "id": profile_id,
            "status": "active",
            "merged_into": None,
            "name": name,
            "name_key": name_key(name),
            "tier": fields.get("tier") or self.config.default_tier,
            "language": fields.get("language"),
            "attributes": dict(fields.get("attributes") or {}),
            "created_at": now,
            "updated_at": now,
        }
        tx.insert_profile(row)
        tx.insert_identifiers(profile_id, idents)
        kinds = ", ".join(sorted({i.type for i in idents})) or "no identifiers"
        self._timeline(tx, profile_id, "profile.created", f"profile created ({kinds})")
        self._event(
            tx,
            "crm.profile.created",
            {"profile_id": row["id"], "tier": row["tier"], "language": row["language"]},
        )
        return row

    def create_profile(
        self, identifiers: Sequence[Mapping[str, str]], fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Explicit creation: refuses identifiers held by another profile (409)."""
        idents = self.normalise(identifiers)

        def work(tx: Tx) -> dict[str, Any]:
            owners = tx.owners(idents)
            if owners:
                others = sorted(set(owners.values()))
                raise IdentifierTaken(
                    f"identifier already belongs to profile {', '.join(others)}", others
                )
            return self._view(tx, self._insert_profile(tx, idents, fields))

        return self._run(work)

    def resolve(
        self,
        identifiers: Sequence[Mapping[str, str]],
        *,
        create: bool,
        fields: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(profile, created). Two profiles -> ResolutionConflict, recorded as a candidate."""
        idents = self.normalise(identifiers)
        if not idents:
            raise InvalidIdentifier("at least one identifier is required")

        # The common case - every identifier known, all on one profile - is one
        # read without a transaction; anything else takes the transactional path.
        holders = self.store.holders(idents)
        if len(holders) == 1:
            [held] = holders.values()
            if set(idents) <= set(held["identifiers"]):
                return self._view_of(held["row"], held["identifiers"]), False

        def work(tx: Tx) -> tuple[dict[str, Any] | None, bool, tuple[str, ...]]:
            holders = tx.holders(idents)
            wanted = set(idents)
            owners = {i: pid for pid, h in holders.items() for i in h["identifiers"] if i in wanted}
            decision = decide(idents, owners, create=create)
            if decision.outcome is Outcome.CONFLICT:
                types = [i.type for i in idents if i in owners]
                ids = decision.profile_ids
                for other in ids[1:]:
                    tx.record_candidate(ids[0], other, types, self.clock())
                return None, False, ids
            if decision.outcome is Outcome.NOT_FOUND:
                raise ProfileNotFound("no profile holds these identifiers")
            if decision.outcome is Outcome.RESOLVED:
                assert decision.profile_id is not None
                if not decision.missing:  # the hot path: one query in all
                    held = holders[decision.profile_id]
                    return self._view(tx, held["row"], held["identifiers"]), False, ()
                # Under the profile's lock: a merge taking it since the read is retried
                # (the identifiers then resolve to the survivor), not written past.
                locked = self._lock_active(tx, decision.profile_id)
                if locked is None:
                    raise Contention(f"profile {decision.profile_id} changed meanwhile")
                # A recently erased customer's identifier is not attached in passing (it
                # may be a recycled number): only PATCH, an explicit act, attaches it.
                digests = {self._digest(i): i for i in decision.missing}
                blocked = tx.suppressed(list(digests), self.clock())
                missing = [i for d, i in digests.items() if d not in blocked]
                if missing:
                    tx.insert_identifiers(decision.profile_id, missing)
                    kinds = ", ".join(sorted({i.type for i in missing}))
                    self._timeline(
                        tx, decision.profile_id, "profile.identifiers_added", f"added {kinds}"
                    )
                return self._view(tx, locked), False, ()
            # ``create`` is the explicit ask: a returning customer starts afresh, with no
            # link to the erased profile. Suppression guards attaching, above, not this.
            row = self._insert_profile(tx, idents, fields or {})
            return self._view(tx, row), True, ()

        profile, created, conflict = self._run(work)
        if conflict:
            raise ResolutionConflict(
                "the identifiers belong to different profiles: "
                f"{' and '.join(conflict)} (a merge candidate)",
                conflict,
            )
        assert profile is not None
        return profile, created

    def get_profile(self, profile_id: str) -> dict[str, Any]:
        return self._read(lambda tx: self._view(tx, self._live(tx, profile_id)))

    def update_profile(self, profile_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            row = self._locked(tx, profile_id)
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
                idents = self.normalise(changes["identifiers"])
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
                values["updated_at"] = self.clock()
                tx.update_profile(profile_id, values)
            if changed:
                row = {**row, **values}
                self._timeline(tx, profile_id, "profile.updated", f"updated {', '.join(changed)}")
                self._event(
                    tx,
                    "crm.profile.updated",
                    {
                        "profile_id": profile_id,
                        "tier": row["tier"],
                        "language": row["language"],
                        "changed": changed,
                    },
                )
            return self._view(tx, row)

        return self._run(work)

    def search(
        self, *, q: str | None, tier: str | None, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        term = (q or "").strip()
        idents = self.config.identifiers.candidates(term) if term else []

        def work(tx: Tx) -> list[dict[str, Any]]:
            rows = tx.search_profiles(
                name_prefix=name_key(term),
                identifiers=idents,
                tier=tier,
                after=after,
                limit=limit,
            )
            return [self._view(tx, r) for r in rows]

        return self._read(work)

    # -- merge ----------------------------------------------------------------------
    def merge(self, survivor_id: str, source_id: str, *, dry_run: bool) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            survivor = self._live(tx, survivor_id)
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
            survivor, source = fresh_survivor, fresh_source
            active = source["status"] == "active" and survivor["status"] == "active"
            check_mergeable(survivor_id, source_id, source_active=active)
            plan = plan_merge(
                self._values(survivor), self._values(source), default_tier=self.config.default_tier
            )
            moved = {table: tx.ids_of(table, source_id) for table in MOVABLE}
            merge_id = "m-" + uuid.uuid4().hex
            result = {
                "merge_id": None if dry_run else merge_id,
                "survivor_id": survivor_id,
                "source_id": source_id,
                "dry_run": dry_run,
                "moved": {table: len(ids) for table, ids in moved.items()},
                "conflicts": plan.conflicts,
                "filled": plan.filled,
            }
            after = {
                "name": plan.result.name,
                "tier": plan.result.tier,
                "language": plan.result.language,
                "attributes": dict(plan.result.attributes),
            }
            if dry_run:
                preview = {**survivor, **after}
                view = self._view(tx, preview)
                view["identifiers"] += [
                    {"type": i["type"], "value": i["value"]} for i in tx.identifiers_of([source_id])
                ]
                result["profile"] = view
                return result
            now = self.clock()
            for table, ids in moved.items():
                tx.move(table, ids, survivor_id, from_profile=source_id)
            name = plan.result.name
            tx.update_profile(
                survivor_id,
                {**after, "name_key": name_key(name), "updated_at": now},
            )
            tx.update_profile(
                source_id, {"status": "merged", "merged_into": survivor_id, "updated_at": now}
            )
            record = plan.record(self._values(survivor), self._values(source))
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
            self._timeline(
                tx,
                survivor_id,
                "profile.merged",
                f"profile {source_id} merged into this one",
                refs={"merge_id": merge_id, "source_id": source_id},
            )
            self._event(
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
                self._profile_updated(tx, survivor_id, after, survivor)
            row = tx.get_profile(survivor_id)
            assert row is not None
            result["profile"] = self._view(tx, row)
            return result

        return self._run(work)

    def _profile_updated(
        self, tx: Tx, profile_id: str, after: Mapping[str, Any], before: Mapping[str, Any]
    ) -> None:
        changed = [k for k in ("name", "tier", "language", "attributes") if after[k] != before[k]]
        self._event(
            tx,
            "crm.profile.updated",
            {
                "profile_id": profile_id,
                "tier": after["tier"],
                "language": after["language"],
                "changed": changed,
            },
        )

    def unmerge(self, survivor_id: str, merge_id: str) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            merge = tx.get_merge(merge_id)
            if merge is None or merge["survivor_id"] != survivor_id:
                self._live(tx, survivor_id)  # unknown: 404; a tombstone: 308 as elsewhere
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
            now = self.clock()
            record = merge["record"]
            for table, ids in record["moved"].items():
                tx.move(table, ids, source_id, from_profile=survivor_id)
            restored = plan_unmerge(self._values(survivor), record)
            back = source_after_unmerge(record)
            after = {
                "name": restored.name,
                "tier": restored.tier,
                "language": restored.language,
                "attributes": dict(restored.attributes),
            }
            tx.update_profile(
                survivor_id,
                {
                    **after,
                    "name_key": name_key(restored.name),
                    "updated_at": now,
                },
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
                self._timeline(
                    tx,
                    pid,
                    "profile.unmerged",
                    f"merge of {source_id} into {survivor_id} undone",
                    refs={"merge_id": merge_id, "other_id": other},
                )
            self._event(
                tx,
                "crm.profile.unmerged",
                {"survivor_id": survivor_id, "source_id": source_id, "merge_id": merge_id},
            )
            if after["tier"] != survivor["tier"] or after["language"] != survivor["language"]:
                self._profile_updated(tx, survivor_id, after, survivor)
            rows = [tx.get_profile(survivor_id), tx.get_profile(source_id)]
            return {
                "merge_id": merge_id,
                "survivor": self._view(tx, rows[0] or {}),
                "source": self._view(tx, rows[1] or {}),
            }

        return self._run(work)

    def merge_candidates(self, *, after: int | None, limit: int) -> list[dict[str, Any]]:
        def work(tx: Tx) -> list[dict[str, Any]]:
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

        return self._read(work)

    # -- timeline and interactions --------------------------------------------------
    def timeline(
        self, profile_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[dict[str, Any]]:
        def work(tx: Tx) -> list[dict[str, Any]]:
            self._live(tx, profile_id)
            return tx.timeline(profile_id, before=before, limit=limit)

        return self._read(work)

    def add_interaction(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            profile = self._locked(tx, fields["profile_id"], follow=True)
            case_id = fields.get("case_id")
            if case_id:
                case = tx.get_case(case_id)
                if case is None or case["profile_id"] != profile["id"]:
                    raise CaseNotFound(f"profile {profile['id']} has no case {case_id}")
                tx.update_case(case_id, {"updated_at": self.clock()})
            row = {
                "id": "i-" + uuid.uuid4().hex,
                "profile_id": profile["id"],
                "channel": fields["channel"],
                "direction": fields["direction"],
                "summary": fields["summary"],
                "case_id": case_id,
                "at": self.clock(),
            }
            tx.insert_interaction(row)
            self._timeline(
                tx,
                profile["id"],
                "interaction",
                row["summary"],
                channel=row["channel"],
                refs={
                    "interaction_id": row["id"],
                    "case_id": case_id,
                    "direction": row["direction"],
                },
                at=row["at"],
            )
            return row

        return self._run(work)

    # -- cases ----------------------------------------------------------------------
    @staticmethod
    def _case_view(row: Mapping[str, Any], *, merged: bool = False) -> dict[str, Any]:
        return {**row, "merged": merged}

    def create_case(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """(case, merged): a similar open case takes the contact instead of a new case."""
        subject, description = fields["subject"], fields.get("description") or ""
        found = self.config.classifier.classify(subject, description)

        def work(tx: Tx) -> tuple[dict[str, Any], bool]:
            # Locked: two contacts at once cannot both open a case.
            profile = self._locked(tx, fields["profile_id"], follow=True)
            pid, channel, now = profile["id"], fields["channel"], self.clock()
            summaries = [
                case_rules.CaseSummary(
                    c["id"], c["category"], c["channel"], c["status"], c["created_at"]
                )
                for c in tx.open_cases_of(pid)
            ]
            similar = case_rules.similar_case(
                summaries,
                category=found.category,
                channel=channel,
                now=now,
                policy=self.config.cases,
                catch_all=self.config.classifier.default_category,
            )
            # What this contact alone would be worth: an urgent follow-up raises the case.
            priority = self.config.classifier.priority(
                found.category, profile["tier"], subject, description
            )
            if similar is not None:
                case = tx.get_case(similar.id)
                assert case is not None
                status = case_rules.status_on_new_contact(case["status"])
                history = list(case["history"])
                if status != case["status"]:
                    history.append({"status": status, "at": now.isoformat()})
                changes = {
                    "contacts": case["contacts"] + 1,
                    "channels": sorted({*case["channels"], channel}),
                    "status": status,
                    "history": history,
                    "priority": self.config.classifier.higher(case["priority"], priority),
                    "updated_at": now,
                }
                tx.update_case(case["id"], changes)
                # The contact itself, in the customer's own words: the case keeps its
                # first description, and this one must not be lost with the request.
                contact = {
                    "id": "i-" + uuid.uuid4().hex,
                    "profile_id": pid,
                    "channel": channel,
                    "direction": "inbound",
                    "summary": f"{subject}\n\n{description}" if description else subject,
                    "case_id": case["id"],
                    "at": now,
                }
                tx.insert_interaction(contact)
                self._timeline(
                    tx,
                    pid,
                    "case.contact_added",
                    f"{case['case_number']}: new contact on {channel}: {contact['summary']}",
                    channel=channel,
                    refs={
                        "case_id": case["id"],
                        "case_number": case["case_number"],
                        "interaction_id": contact["id"],
                    },
                )
                self._event(
                    tx,
                    "crm.case.updated",
                    {
                        "case_id": case["id"],
                        "profile_id": pid,
                        "status": status,
                        "case_number": case["case_number"],
                        "category": case["category"],
                        "priority": changes["priority"],
                        "channel": channel,
                        "merged": True,
                    },
                )
                return self._case_view({**case, **changes}, merged=True), True
            number = self.config.case_numbers()  # a collision is retried (unique column)
            row = {
                "id": "c-" + uuid.uuid4().hex,
                "case_number": number,
                "profile_id": pid,
                "channel": channel,
                "channels": [channel],
                "subject": subject,
                "description": description,
                "category": found.category,
                "confidence": found.confidence,
                "priority": priority,
                "status": "new",
                "contacts": 1,
                "history": [{"status": "new", "at": now.isoformat()}],
                "created_at": now,
                "updated_at": now,
                "closed_at": None,
            }
            tx.insert_case(row)
            self._timeline(
                tx,
                pid,
                "case.created",
                f"{number} opened: {subject}",
                channel=channel,
                refs={"case_id": row["id"], "case_number": number},
            )
            self._event(
                tx,
                "crm.case.created",
                {
                    "case_id": row["id"],
                    "case_number": number,
                    "profile_id": pid,
                    "channel": channel,
                    "category": found.category,
                    "priority": priority,
                },
            )
            return self._case_view(row), False

        return self._run(work)

    def get_case(self, case_id: str) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            case = tx.get_case(case_id)
            if case is None:
                raise CaseNotFound(f"no case {case_id}")
            return self._case_view(case)

        return self._read(work)

    def update_case(self, case_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            tx.lock_case(case_id)  # concurrent changes of one case apply one after another
            case = tx.get_case(case_id)
            if case is None:
                raise CaseNotFound(f"no case {case_id}")
            now = self.clock()
            values: dict[str, Any] = {}
            target = changes.get("status")
            if target is not None and target != case["status"]:
                case_rules.check_transition(
                    case["status"],
                    target,
                    closed_at=case["closed_at"],
                    now=now,
                    policy=self.config.cases,
                )
                values["status"] = target
                values["history"] = [*case["history"], {"status": target, "at": now.isoformat()}]
                values["closed_at"] = now if target == "closed" else None
            category = changes.get("category")
            if category is not None and category not in self.config.classifier.categories:
                known = ", ".join(self.config.classifier.categories)
                raise UnknownCategory(f"no category {category!r}; known: {known}")
            for name in ("priority", "category"):
                if changes.get(name) is not None and changes[name] != case[name]:
                    values[name] = changes[name]
            if not values:
                return self._case_view(case)
            values["updated_at"] = now
            tx.update_case(case_id, values)
            case = {**case, **values}
            changed = sorted(k for k in values if k in ("status", "priority", "category"))
            if case["profile_id"]:
                verb = f"status {target}" if "status" in values else ", ".join(changed)
                self._timeline(
                    tx,
                    case["profile_id"],
                    "case.updated",
                    f"{case['case_number']}: {verb}",
                    channel=case["channel"],
                    refs={"case_id": case_id, "case_number": case["case_number"]},
                )
            self._event(
                tx,
                "crm.case.updated",
                {
                    "case_id": case_id,
                    "profile_id": case["profile_id"],
                    "status": case["status"],
                    "case_number": case["case_number"],
                    "category": case["category"],
                    "priority": case["priority"],
                    "changed": changed,
                },
            )
            return self._case_view(case)

        return self._run(work)

    def lookup_case(
        self, client: str, case_number: str, phone: str, caller: str | None = None
    ) -> dict[str, Any]:
        """``caller``: the person the channel asks for (an IVR's ANI, a web user's address),
        whose own budget it is; without one the API client's budget is everyone's."""
        from services.crm import lookup

        return lookup.lookup_case(self, client, case_number, phone, caller)

    # -- data protection ------------------------------------------------------------
    def export(self, profile_id: str) -> dict[str, Any]:
        def work(tx: Tx) -> dict[str, Any]:
            row = self._live(tx, profile_id)
            ids = [profile_id, *tx.profiles_merged_into(profile_id)]
            return {
                "profile": self._view(tx, row),
                "merged_profile_ids": ids[1:],
                "identifiers": tx.identifiers_of(ids),
                "interactions": tx.rows_of("interactions", ids),
                "cases": tx.rows_of("cases", ids),
                "timeline": tx.rows_of("timeline", ids),
                "merges": [
                    {
                        **m,
                        "record": record_for_export(
                            m["record"], m["survivor_id"], m["source_id"], ids
                        ),
                    }
                    for m in tx.merges_of(ids)
                ],
            }

        document: dict[str, Any] = {
            "format": "switchboard.crm.export/1",
            "customer_id": profile_id,
            "generated_at": self.clock(),
        }
        document.update(self._run(work))
        services: dict[str, Any] = {}
        for name, peer in self.peers.items():  # PeerUnavailable propagates: no partial export
            services[name] = {
                cid: peer.fetch(cid) for cid in [profile_id, *document["merged_profile_ids"]]
            }
        document["services"] = services
        return document

    def erase(self, profile_id: str) -> list[str]:
        """Erase a customer here; returns every profile id erased (with tombstones)."""

        def work(tx: Tx) -> list[str]:
            self._live(tx, profile_id)
            ids = [profile_id, *tx.profiles_merged_into(profile_id)]
            now = self.clock()
            held = [Identifier(r["type"], r["value"]) for r in tx.identifiers_of(ids)]
            tx.suppress([self._digest(i) for i in held], now + self.config.suppression)
            for table in ("identifiers", "interactions", "timeline"):
                tx.delete_of(table, ids)
            if self.config.keep_anonymised_cases:
                tx.anonymise_cases(ids)
            else:
                tx.delete_of("cases", ids)
            tx.delete_merges_of(ids)
            tx.delete_candidates_of(ids)
            tx.delete_profiles(ids)
            for pid in ids:
                self._event(tx, "crm.profile.erased", {"profile_id": pid})
            return ids

        return self._run(work)

    # -- consumed events ------------------------------------------------------------
    def project_event(self, event: Event) -> bool:
        """Put an identity/routing event on its customer's timeline, exactly once."""
        item = project(event.type, event.data)
        customer_id = event.data.get("customer_id")
        if item is None or not isinstance(customer_id, str) or not customer_id:
            return False

        def work(tx: Tx) -> bool:
            try:
                # Locked before anything is written: a merge committing after the
                # read would otherwise leave the item on the tombstone's timeline.
                profile = self._locked(tx, customer_id, follow=True)
            except ProfileNotFound:
                return False  # not a customer we know (or erased): nothing to show
            if tx.seen_event(event.id, self.clock()):
                return False
            self._timeline(
                tx,
                profile["id"],
                item.kind,
                item.summary,
                channel=item.channel,
                refs={**item.refs, "event_id": event.id},
                at=_parse_time(event.occurred_at),
            )
            return True

        return self._run(work)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
