"""Profiles, identity resolution, merge and unmerge against a real database."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.domain.errors import (
    IdentifierTaken,
    JunkIdentifier,
    MergeRefused,
    ProfileMoved,
    ProfileNotFound,
    ResolutionConflict,
)
from services.crm.service import CrmService
from tests.integration.crm.concurrency import all_at_once

PHONE = {"type": "phone", "value": "+86 138 0013 8000"}
EMAIL = {"type": "email", "value": "Li.Wei@Example.com"}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_resolve_creates_once_then_finds_the_profile_by_any_spelling(crm: CrmService) -> None:
    created, was_new = crm.resolve([PHONE], create=True, fields={"name": "Li Wei"})
    found, again = crm.resolve([{"type": "phone", "value": "0086-138-0013-8000"}], create=False)
    assert was_new and not again and found["id"] == created["id"]
    assert found["identifiers"] == [{"type": "phone", "value": "+8613800138000"}]


def test_resolve_attaches_the_identifiers_the_profile_lacked(crm: CrmService) -> None:
    profile, _ = crm.resolve([PHONE], create=True)
    found, created = crm.resolve([PHONE, EMAIL], create=False)
    assert not created and found["id"] == profile["id"]
    assert {"type": "email", "value": "li.wei@example.com"} in found["identifiers"]


def test_resolve_without_create_of_an_unknown_identifier_is_not_found(crm: CrmService) -> None:
    with pytest.raises(ProfileNotFound):
        crm.resolve([PHONE], create=False)


def test_junk_identifiers_are_refused(crm: CrmService) -> None:
    with pytest.raises(JunkIdentifier):
        crm.resolve([{"type": "phone", "value": "0000000"}], create=True)


def test_identifiers_of_two_profiles_conflict_and_become_a_merge_candidate(
    crm: CrmService,
) -> None:
    a = crm.create_profile([PHONE], {"name": "A"})
    b = crm.create_profile([EMAIL], {"name": "B"})
    with pytest.raises(ResolutionConflict) as conflict:
        crm.resolve([PHONE, EMAIL], create=True)
    assert set(conflict.value.profile_ids) == {a["id"], b["id"]}
    [candidate] = crm.merge_candidates(after=None, limit=10)
    assert set(candidate["profile_ids"]) == {a["id"], b["id"]}
    assert candidate["identifier_types"] == ["email", "phone"]


def test_creating_a_profile_with_a_taken_identifier_names_the_holder(crm: CrmService) -> None:
    holder = crm.create_profile([PHONE], {})
    with pytest.raises(IdentifierTaken) as taken:
        crm.create_profile([{"type": "phone", "value": "13800138000"}], {})
    assert taken.value.profile_ids == [holder["id"]]


def test_fifty_concurrent_resolves_of_one_new_phone_make_exactly_one_profile(
    db_url: str, engine: Engine
) -> None:
    # Each thread has its own engine connection pool, as gunicorn workers would.
    engines = [make_engine(db_url, pool_size=2) for _ in range(5)]
    services = [CrmService(SqlStore(e)) for e in engines]

    def call(i: int) -> tuple[str, bool]:
        profile, created = services[i % 5].resolve(
            [{"type": "phone", "value": "13900139000"}], create=True
        )
        return profile["id"], created

    try:
        results = all_at_once(50, call)
    finally:
        for e in engines:
            e.dispose()
    assert len({pid for pid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert count(engine, t.profiles) == 1 and count(engine, t.identifiers) == 1


def test_search_finds_by_name_prefix_or_any_identifier_spelling(crm: CrmService) -> None:
    li = crm.create_profile([PHONE], {"name": "Li Wei", "tier": "gold"})
    crm.create_profile([EMAIL], {"name": "Wang Fang"})
    assert [p["id"] for p in crm.search(q="li", tier=None, after=None, limit=10)] == [li["id"]]
    by_phone = crm.search(q="138 0013 8000", tier=None, after=None, limit=10)
    assert [p["id"] for p in by_phone] == [li["id"]]
    assert len(crm.search(q=None, tier="gold", after=None, limit=10)) == 1
    assert crm.search(q="100%_", tier=None, after=None, limit=10) == []


def _rich_pair(crm: CrmService) -> tuple[dict[str, Any], dict[str, Any]]:
    survivor = crm.create_profile(
        [PHONE], {"name": "Li Wei", "tier": "gold", "attributes": {"city": "Shanghai"}}
    )
    source = crm.create_profile(
        [EMAIL, {"type": "wechat_openid", "value": "oWx1"}],
        {"name": "Wei Li", "language": "zh", "attributes": {"city": "Beijing", "pet": "cat"}},
    )
    crm.add_interaction(
        {"profile_id": source["id"], "channel": "chat", "direction": "inbound", "summary": "hi"}
    )
    crm.create_case({"profile_id": source["id"], "channel": "email", "subject": "Refund please"})
    return survivor, source


def snapshot(crm: CrmService, profile_id: str) -> dict[str, Any]:
    doc = crm.export(profile_id)
    return {
        "profile": {k: v for k, v in doc["profile"].items() if k != "updated_at"},
        "identifiers": sorted((i["type"], i["value"]) for i in doc["identifiers"]),
        "interactions": sorted(i["id"] for i in doc["interactions"]),
        "cases": sorted(c["id"] for c in doc["cases"]),
        "timeline": sorted(
            i["id"] for i in doc["timeline"] if not i["kind"].startswith("profile.")
        ),
    }


def test_a_dry_run_merge_shows_the_outcome_and_changes_nothing(crm: CrmService) -> None:
    survivor, source = _rich_pair(crm)
    before = snapshot(crm, survivor["id"])
    preview = crm.merge(survivor["id"], source["id"], dry_run=True)
    assert preview["dry_run"] and preview["merge_id"] is None
    assert preview["moved"]["identifiers"] == 2 and preview["moved"]["cases"] == 1
    assert preview["conflicts"]["name"] == {"survivor": "Li Wei", "source": "Wei Li"}
    assert preview["profile"]["language"] == "zh" and len(preview["profile"]["identifiers"]) == 3
    assert snapshot(crm, survivor["id"]) == before
    assert crm.get_profile(source["id"])["id"] == source["id"]


def test_merge_moves_everything_and_leaves_a_tombstone(crm: CrmService) -> None:
    survivor, source = _rich_pair(crm)
    result = crm.merge(survivor["id"], source["id"], dry_run=False)
    merged = crm.get_profile(survivor["id"])
    assert len(merged["identifiers"]) == 3
    assert merged["attributes"] == {"city": "Shanghai", "pet": "cat"}
    with pytest.raises(ProfileMoved) as moved:
        crm.get_profile(source["id"])
    assert moved.value.survivor_id == survivor["id"]
    assert result["merge_id"].startswith("m-")
    doc = crm.export(survivor["id"])
    assert len(doc["cases"]) == 1 and len(doc["interactions"]) == 1
    found, _ = crm.resolve([EMAIL], create=False)
    assert found["id"] == survivor["id"]


def test_merge_then_unmerge_is_lossless(crm: CrmService) -> None:
    survivor, source = _rich_pair(crm)
    before_survivor = snapshot(crm, survivor["id"])
    before_source = snapshot(crm, source["id"])
    merge = crm.merge(survivor["id"], source["id"], dry_run=False)
    crm.unmerge(survivor["id"], merge["merge_id"])
    assert snapshot(crm, survivor["id"]) == before_survivor
    assert snapshot(crm, source["id"]) == before_source


def test_merge_and_unmerge_publish_their_events(crm: CrmService, engine: Engine) -> None:
    survivor, source = _rich_pair(crm)
    merge = crm.merge(survivor["id"], source["id"], dry_run=False)
    crm.unmerge(survivor["id"], merge["merge_id"])
    with engine.connect() as conn:
        fields = [r.fields for r in conn.execute(select(t.outbox.c.fields)).all()]
    types = [__import__("json").loads(f)["type"] for f in fields]
    assert "crm.profile.merged" in types and "crm.profile.unmerged" in types


def test_a_tier_change_emits_profile_updated(crm: CrmService, engine: Engine) -> None:
    profile = crm.create_profile([PHONE], {})
    crm.update_profile(profile["id"], {"tier": "platinum"})
    with engine.connect() as conn:
        rows = [r.fields for r in conn.execute(select(t.outbox.c.fields)).all()]
    import json

    events = [json.loads(f) for f in rows]
    updated = [e for e in events if e["type"] == "crm.profile.updated"]
    assert json.loads(updated[0]["data"]) == {
        "profile_id": profile["id"],
        "tier": "platinum",
        "language": None,
        "changed": ["tier"],
    }


def test_one_source_merged_into_two_survivors_at_once_goes_to_exactly_one(
    db_url: str, crm: CrmService
) -> None:
    a = crm.create_profile([{"type": "app_user_id", "value": "a"}], {})
    b = crm.create_profile([{"type": "app_user_id", "value": "b"}], {})
    source = crm.create_profile([PHONE], {})
    engines = [make_engine(db_url, pool_size=1) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def merge_into(survivor: str, engine: Engine) -> None:
        barrier.wait()
        try:
            CrmService(SqlStore(engine)).merge(survivor, source["id"], dry_run=False)
            outcomes.append("merged")
        except MergeRefused:
            outcomes.append("refused")

    threads = [
        threading.Thread(target=merge_into, args=(p["id"], e))
        for p, e in zip((a, b), engines, strict=True)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in engines:
        e.dispose()
    assert sorted(outcomes) == ["merged", "refused"]
    owner, _ = crm.resolve([PHONE], create=False)
    assert owner["id"] in {a["id"], b["id"]}


def test_the_name_prefix_search_is_served_by_the_name_index(
    engine: Engine, crm: CrmService
) -> None:
    crm.create_profile([PHONE], {"name": "Li Wei"})
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "crm_profiles" in statement and "LIKE" in statement.upper():
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        assert len(crm.search(q="li w", tier=None, after=None, limit=10)) == 1
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, params)] = captured
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
        else:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN " + statement, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
        cursor.close()
    assert "ix_crm_profiles_name_key" in plan, plan


def test_an_undone_merge_shows_neither_customer_the_others_data(crm: CrmService) -> None:
    alice = crm.create_profile([PHONE], {"name": "Alice Wang", "attributes": {"city": "Xi'an"}})
    bob = crm.create_profile([EMAIL], {"name": "Bob Li", "attributes": {"addr": "1 Bob Road"}})
    merged = crm.merge(alice["id"], bob["id"], dry_run=False)
    # Merged, Bob's profile is part of Alice's: her export holds what he brought.
    assert "Bob Li" in str(crm.export(alice["id"])["merges"])
    crm.unmerge(alice["id"], merged["merge_id"])
    for own, other in ((alice, ("Bob Li", "1 Bob Road")), (bob, ("Alice Wang", "Xi'an"))):
        [record] = crm.export(own["id"])["merges"]
        assert record["id"] == merged["merge_id"] and record["status"] == "unmerged"
        assert not any(value in str(record) for value in other), own["name"]
    assert "Alice Wang" in str(crm.export(alice["id"])["merges"])  # her own side stays
