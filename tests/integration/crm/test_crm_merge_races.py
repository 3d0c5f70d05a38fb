"""Writes racing a merge: a write that read its profile just before a merge of that profile
committed must not land on the merged-away tombstone, where the survivor's view, timeline and
lookups never see it. Each test commits a real merge, on a connection of its own, at the worst
moment: right before the writer takes its first lock on the source."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore, SqlTx
from services.crm.domain.errors import ProfileMoved, ProfileNotFound
from services.crm.service import CrmService
from shared.events import Event

PHONE = {"type": "phone", "value": "+86 138 0013 8000"}
EMAIL = {"type": "email", "value": "li.wei@example.com"}


@pytest.fixture
def pair(crm: CrmService) -> tuple[str, str]:
    survivor = crm.create_profile([{"type": "app_user_id", "value": "u-survivor"}], {})
    source = crm.create_profile([PHONE], {"name": "Li Wei"})
    return survivor["id"], source["id"]


@pytest.fixture
def merge_before_lock(
    monkeypatch: pytest.MonkeyPatch, db_url: str, pair: tuple[str, str]
) -> Iterator[list[Any]]:
    survivor_id, source_id = pair
    engine = make_engine(db_url, pool_size=1)
    original = SqlTx.lock_profile
    writer = threading.get_ident()
    merged: list[Any] = []

    def merge() -> None:
        try:
            merged.append(CrmService(SqlStore(engine)).merge(survivor_id, source_id, dry_run=False))
        except Exception as exc:  # reported by the test's own assertion
            merged.append(exc)

    def lock_profile(self: SqlTx, profile_id: str) -> None:
        if profile_id == source_id and not merged and threading.get_ident() == writer:
            thread = threading.Thread(target=merge)
            thread.start()
            thread.join()
        original(self, profile_id)

    monkeypatch.setattr(SqlTx, "lock_profile", lock_profile)
    yield merged
    engine.dispose()
    assert len(merged) == 1 and isinstance(merged[0], dict), merged  # the merge did commit


def test_a_patch_racing_a_merge_is_moved_not_written_to_the_tombstone(
    crm: CrmService, pair: tuple[str, str], merge_before_lock: list[Any]
) -> None:
    survivor_id, source_id = pair
    with pytest.raises(ProfileMoved) as moved:
        crm.update_profile(source_id, {"tier": "gold", "identifiers": [EMAIL]})
    assert moved.value.survivor_id == survivor_id  # the client's 308 names where to retry
    with pytest.raises(ProfileNotFound):
        crm.resolve([EMAIL], create=False)


def test_a_case_racing_a_merge_is_opened_on_the_survivor(
    crm: CrmService, pair: tuple[str, str], merge_before_lock: list[Any]
) -> None:
    survivor_id, source_id = pair
    case, _ = crm.create_case({"profile_id": source_id, "channel": "chat", "subject": "refund"})
    assert case["profile_id"] == survivor_id
    timeline = crm.timeline(survivor_id, before=None, limit=50)
    assert case["id"] in {item["refs"].get("case_id") for item in timeline}


def test_an_interaction_racing_a_merge_is_recorded_on_the_survivor(
    crm: CrmService, pair: tuple[str, str], merge_before_lock: list[Any]
) -> None:
    survivor_id, source_id = pair
    row = crm.add_interaction(
        {"profile_id": source_id, "channel": "voice", "direction": "inbound", "summary": "hi"}
    )
    assert row["profile_id"] == survivor_id
    timeline = crm.timeline(survivor_id, before=None, limit=50)
    assert row["id"] in {item["refs"].get("interaction_id") for item in timeline}


def test_an_identifier_attached_by_a_resolve_racing_a_merge_goes_to_the_survivor(
    crm: CrmService, pair: tuple[str, str], merge_before_lock: list[Any]
) -> None:
    survivor_id, _ = pair
    found, created = crm.resolve([PHONE, EMAIL], create=False)
    assert not created and found["id"] == survivor_id
    assert {"type": "email", "value": "li.wei@example.com"} in found["identifiers"]
    again, _ = crm.resolve([EMAIL], create=False)
    assert again["id"] == survivor_id


def test_an_event_projected_racing_a_merge_lands_on_the_survivors_timeline(
    crm: CrmService, pair: tuple[str, str], merge_before_lock: list[Any]
) -> None:
    survivor_id, source_id = pair
    event = Event.new(
        "routing.task.assigned",
        {"task_id": "t1", "customer_id": source_id, "agent_id": "a1", "channel": "chat"},
        source="routing",
    )
    assert crm.project_event(event) is True
    timeline = crm.timeline(survivor_id, before=None, limit=50)
    assert event.id in {item["refs"].get("event_id") for item in timeline}
