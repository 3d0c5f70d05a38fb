"""Cases, timeline, lookup, erasure and the outbox against a real database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine

from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.config import CrmConfig
from services.crm.consumer import timeline_consumer
from services.crm.domain.case_numbers import parse_case_number
from services.crm.domain.errors import (
    CaseNotFound,
    InvalidTransition,
    ProfileNotFound,
    UnknownCategory,
)
from services.crm.service import CrmService
from shared.events import STREAMS, Event
from shared.sql_outbox import add_to_outbox, relay_outbox
from tests.integration.crm.concurrency import all_at_once


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def crm(engine: Engine, clock: Clock) -> CrmService:
    return CrmService(SqlStore(engine), clock=clock)


@pytest.fixture
def profile(crm: CrmService) -> dict[str, Any]:
    return crm.create_profile(
        [{"type": "phone", "value": "13800138000"}, {"type": "email", "value": "li@example.com"}],
        {"name": "Li Wei", "tier": "gold"},
    )


def new_case(crm: CrmService, profile: dict[str, Any], channel: str, subject: str) -> Any:
    return crm.create_case({"profile_id": profile["id"], "channel": channel, "subject": subject})


def test_a_case_is_numbered_classified_and_prioritised(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    case, merged = new_case(crm, profile, "chat", "我的账号被盗了")
    assert not merged and re.fullmatch(
        r"C-[0-9A-HJKMNP-TV-Z]{3}(-[0-9A-HJKMNP-TV-Z]{3}){2}", case["case_number"]
    )
    assert parse_case_number(case["case_number"]) == case["case_number"]  # its check holds
    assert case["category"] == "account_security" and case["priority"] == "urgent"
    assert case["status"] == "new" and 0 < case["confidence"] <= 1


def test_a_similar_case_on_another_channel_takes_the_new_contact(
    crm: CrmService, profile: dict[str, Any], clock: Clock
) -> None:
    first, _ = new_case(crm, profile, "chat", "I want a refund")
    crm.update_case(first["id"], {"status": "pending_customer"})
    clock.now += timedelta(hours=5)
    again, merged = new_case(crm, profile, "voice", "refund still not here")
    assert merged and again["id"] == first["id"]
    assert again["contacts"] == 2 and again["channels"] == ["chat", "voice"]
    assert again["status"] == "open"
    same_channel, merged = new_case(crm, profile, "chat", "another refund")
    assert not merged and same_channel["case_number"] != first["case_number"]
    clock.now += timedelta(hours=80)
    late, merged = new_case(crm, profile, "email", "refund?")
    assert not merged


def test_a_contact_folded_into_a_similar_case_keeps_its_own_words(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    first, _ = new_case(crm, profile, "chat", "refund please")
    again, merged = crm.create_case(
        {
            "profile_id": profile["id"],
            "channel": "voice",
            "subject": "refund still not here",
            "description": "I sent the parcel back on Monday, tracking SF1234567",
        }
    )
    assert merged and again["id"] == first["id"]
    [item] = [
        i
        for i in crm.timeline(profile["id"], before=None, limit=20)
        if i["kind"] == "case.contact_added"
    ]
    assert "tracking SF1234567" in item["summary"] and item["channel"] == "voice"
    exported = crm.export(profile["id"])
    [contact] = [i for i in exported["interactions"] if i["id"] == item["refs"]["interaction_id"]]
    assert (contact["case_id"], contact["channel"], contact["direction"]) == (
        first["id"],
        "voice",
        "inbound",
    )
    assert contact["summary"].endswith("I sent the parcel back on Monday, tracking SF1234567")


def test_an_urgent_follow_up_raises_the_case_it_joins(crm: CrmService) -> None:
    plain = crm.create_profile([{"type": "app_user_id", "value": "u-plain"}], {})
    first, _ = new_case(crm, plain, "chat", "refund please")
    assert first["priority"] == "normal"
    again, merged = new_case(crm, plain, "voice", "refund URGENT, this is unacceptable")
    assert merged and again["id"] == first["id"] and again["priority"] == "urgent"
    assert crm.get_case(first["id"])["priority"] == "urgent"
    calm, merged = new_case(crm, plain, "email", "about my refund")
    assert merged and calm["priority"] == "urgent"  # a calmer contact never lowers it


def test_contacts_no_rule_recognised_are_not_merged_as_one_problem(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    first, _ = new_case(crm, profile, "chat", "question about warranty terms")
    second, merged = new_case(crm, profile, "voice", "can you recommend a gift?")
    assert first["category"] == second["category"] == "other"
    assert not merged and second["id"] != first["id"]


def test_a_case_can_only_be_put_in_a_category_the_rules_define(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    case, _ = new_case(crm, profile, "chat", "invoice wrong")
    with pytest.raises(UnknownCategory):
        crm.update_case(case["id"], {"category": "no_such_category"})
    assert crm.update_case(case["id"], {"category": "refund_return"})["category"] == "refund_return"


def test_the_status_workflow_is_enforced_and_reopening_has_a_window(
    crm: CrmService, profile: dict[str, Any], clock: Clock
) -> None:
    case, _ = new_case(crm, profile, "chat", "invoice wrong")
    with pytest.raises(InvalidTransition):
        crm.update_case(case["id"], {"status": "closed"})
    for status in ("open", "resolved", "closed"):
        case = crm.update_case(case["id"], {"status": status})
    assert [h["status"] for h in case["history"]] == ["new", "open", "resolved", "closed"]
    clock.now += timedelta(days=3)
    case = crm.update_case(case["id"], {"status": "open"})
    case = crm.update_case(case["id"], {"status": "resolved"})
    case = crm.update_case(case["id"], {"status": "closed"})
    clock.now += timedelta(days=8)
    with pytest.raises(InvalidTransition):
        crm.update_case(case["id"], {"status": "open"})


def test_case_numbers_stay_unique_under_concurrency(
    db_url: str, crm: CrmService, clock: Clock, engine: Engine
) -> None:
    # One customer each: nothing can fold into a similar case, so 20 cases are made.
    customers = [
        crm.create_profile([{"type": "app_user_id", "value": f"u{i}"}], {})["id"] for i in range(20)
    ]
    engines = [make_engine(db_url, pool_size=2) for _ in range(4)]
    try:
        results = all_at_once(
            20,
            lambda i: CrmService(SqlStore(engines[i % 4]), clock=clock).create_case(
                {"profile_id": customers[i], "channel": "chat", "subject": "invoice wrong"}
            ),
        )
    finally:
        for e in engines:
            e.dispose()
    assert [merged for _, merged in results] == [False] * 20
    assert sorted(case["profile_id"] for case, _ in results) == sorted(customers)
    numbers = sorted(case["case_number"] for case, _ in results)
    assert len(set(numbers)) == 20
    with engine.connect() as conn:
        stored = conn.execute(select(t.cases.c.case_number)).scalars().all()
    assert sorted(stored) == numbers


def test_a_case_number_collision_is_retried_with_a_fresh_number(
    engine: Engine, clock: Clock, profile: dict[str, Any]
) -> None:
    # Forty random bits make a collision rare, not impossible: the unique column
    # refuses the second, and the use case runs again with a new number.
    drawn = iter(["C-AAA-AAA-AAA", "C-AAA-AAA-AAA", "C-BBB-BBB-BBB"])
    crm = CrmService(
        SqlStore(engine), config=CrmConfig(case_numbers=lambda: next(drawn)), clock=clock
    )
    first, _ = new_case(crm, profile, "chat", "invoice wrong")
    second, merged = new_case(crm, profile, "voice", "where is my parcel")
    assert not merged and (first["case_number"], second["case_number"]) == (
        "C-AAA-AAA-AAA",
        "C-BBB-BBB-BBB",
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.cases)).scalar() == 2


def test_lookup_needs_both_the_case_number_and_the_phone(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    case, _ = new_case(crm, profile, "chat", "where is my parcel")
    answer = crm.lookup_case("c1", case["case_number"], "+86 138-0013-8000")
    assert answer["status"] == "new" and answer["category"] == "logistics_complaint"
    assert set(answer) == {"status", "category", "updated_at"}
    for number, phone in [
        (case["case_number"], "13900000000"),
        ("C-2026-999999", "13800138000"),
        (case["case_number"], "not a phone"),
    ]:
        with pytest.raises(CaseNotFound) as failed:
            crm.lookup_case("c1", number, phone)
        assert str(failed.value) == "no case matches this case number and phone number"


def test_interactions_and_case_changes_are_on_the_timeline_newest_first(
    crm: CrmService, profile: dict[str, Any], clock: Clock
) -> None:
    clock.now += timedelta(minutes=1)
    crm.add_interaction(
        {"profile_id": profile["id"], "channel": "voice", "direction": "inbound", "summary": "call"}
    )
    clock.now += timedelta(minutes=1)
    new_case(crm, profile, "chat", "invoice")
    items = crm.timeline(profile["id"], before=None, limit=10)
    assert [i["kind"] for i in items] == ["case.created", "interaction", "profile.created"]
    older = crm.timeline(profile["id"], before=(items[0]["at"], items[0]["id"]), limit=10)
    assert [i["kind"] for i in older] == ["interaction", "profile.created"]


def test_consumed_events_project_onto_the_timeline_exactly_once(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    event = Event.new(
        "routing.task.assigned",
        {
            "task_id": "t1",
            "customer_id": profile["id"],
            "agent_id": "a1",
            "channel": "chat",
            "category": "basic",
            "waited_ms": 3000,
        },
        source="routing",
    )
    assert crm.project_event(event) is True
    assert crm.project_event(event) is False
    kinds = [i["kind"] for i in crm.timeline(profile["id"], before=None, limit=10)]
    assert kinds.count("task.assigned") == 1


def test_the_consumer_projects_identity_and_routing_events_onto_the_timeline(
    crm: CrmService, profile: dict[str, Any], redis: Any
) -> None:
    locked = Event.new(
        "identity.verification.locked",
        {
            "verification_id": "v9",
            "customer_id": profile["id"],
            "channel": "voice",
            "reason": "too_many_attempts",
        },
        source="identity",
        occurred_at="2026-11-23T09:05:00+00:00",
    )
    escalated = Event.new(
        "routing.task.escalated",
        {
            "task_id": "t4",
            "customer_id": profile["id"],
            "channel": "chat",
            "category": "urgent",
            "reason": "sla",
        },
        source="routing",
        occurred_at="2026-11-23T09:06:00+00:00",
    )
    redis.xadd(STREAMS["identity"], locked.to_fields())
    redis.xadd(STREAMS["identity"], locked.to_fields())  # delivered twice, shown once
    redis.xadd(STREAMS["routing"], escalated.to_fields())
    consumer = timeline_consumer(crm, redis, "t")
    while consumer.run_once(block_ms=10):
        pass
    items = crm.timeline(profile["id"], before=None, limit=10)
    assert [i["kind"] for i in items] == [
        "task.escalated",
        "verification.locked",
        "profile.created",
    ]
    task, verification = items[0], items[1]
    assert (task["channel"], task["summary"]) == ("chat", "conversation escalated: sla")
    assert task["refs"] == {"task_id": "t4", "event_id": escalated.id}
    assert task["at"] == datetime(2026, 11, 23, 9, 6, tzinfo=UTC)
    assert verification["channel"] == "voice"
    assert verification["summary"] == "identity verification locked: too_many_attempts"
    assert verification["refs"] == {"verification_id": "v9", "event_id": locked.id}
    for stream in (STREAMS["identity"], STREAMS["routing"]):
        assert redis.xpending(stream, "crm")["pending"] == 0


@pytest.mark.parametrize("keep_cases", [False, True], ids=["cases-deleted", "cases-kept"])
def test_erasure_leaves_no_personal_value_in_any_table(
    engine: Engine, clock: Clock, keep_cases: bool
) -> None:
    store = SqlStore(engine)
    crm = CrmService(store, clock=clock, config=CrmConfig(keep_anonymised_cases=keep_cases))
    profile = crm.create_profile(
        [{"type": "phone", "value": "13800138000"}, {"type": "email", "value": "li@example.com"}],
        {"name": "Li Wei", "tier": "gold"},
    )
    other = crm.create_profile([{"type": "wechat_openid", "value": "oSecretWx"}], {"name": "Zed"})
    refund, _ = crm.create_case(
        {
            "profile_id": profile["id"],
            "channel": "chat",
            "subject": "Refund for Li Wei",
            "description": "Li Wei (+8613800138000, li@example.com) wants a refund",
        }
    )
    crm.update_case(refund["id"], {"status": "open"})
    parcel, _ = crm.create_case(
        {
            "profile_id": other["id"],
            "channel": "chat",
            "subject": "parcel lost",
            "description": "Zed, wechat oSecretWx, says the parcel never came",
        }
    )
    # The API writes only status and time to a case's history; a note naming the
    # customer (as an older or imported row may hold) must go with the rest.
    with store.transaction() as tx:
        history = [*tx.get_case(parcel["id"])["history"], {"status": "new", "note": "Zed rang"}]
        tx.update_case(parcel["id"], {"history": history})
    crm.add_interaction(
        {
            "profile_id": other["id"],
            "channel": "chat",
            "direction": "inbound",
            "summary": "Zed says hello",
        }
    )
    crm.merge(profile["id"], other["id"], dry_run=False)
    erased = crm.erase(profile["id"])
    assert set(erased) == {profile["id"], other["id"]}
    needles = ["Li Wei", "8613800138000", "li@example.com", "oSecretWx", "Zed"]
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")).all():
                dump = json.dumps([str(v) for v in row], ensure_ascii=False)
                for needle in needles:
                    assert needle not in dump, f"{needle!r} left in {table}"
        outbox = [json.loads(r.fields) for r in conn.execute(select(t.outbox.c.fields)).all()]
        cases = conn.execute(select(t.cases.c.id)).scalars().all()
    erased_events = [json.loads(e["data"]) for e in outbox if e["type"] == "crm.profile.erased"]
    assert {e["profile_id"] for e in erased_events} == set(erased)
    if not keep_cases:
        assert cases == []
        return
    # Kept for statistics: the facts stay, nothing says whose case it was.
    assert sorted(cases) == sorted([refund["id"], parcel["id"]])
    kept = crm.get_case(refund["id"])
    assert kept["profile_id"] is None and kept["subject"] is None
    assert kept["description"] is None and kept["history"] == []
    assert (kept["category"], kept["status"], kept["channel"]) == ("refund_return", "open", "chat")
    assert crm.get_case(parcel["id"])["category"] == "logistics_complaint"


def test_resolve_with_create_gives_an_erased_customer_a_fresh_profile(
    crm: CrmService, profile: dict[str, Any], engine: Engine
) -> None:
    crm.erase(profile["id"])
    phone = [{"type": "phone", "value": "13800138000"}]
    # Without ``create`` nothing is found, as before: the erased profile is gone.
    with pytest.raises(ProfileNotFound):
        crm.resolve(phone, create=False)
    # ``create`` is the explicit ask: a new profile, nothing of the old one.
    fresh, created = crm.resolve(phone, create=True)
    assert created and fresh["id"] != profile["id"]
    assert fresh["name"] is None and fresh["tier"] == "default"
    assert fresh["identifiers"] == [{"type": "phone", "value": "+8613800138000"}]
    assert [i["kind"] for i in crm.timeline(fresh["id"], before=None, limit=10)] == [
        "profile.created"
    ]
    assert crm.export(fresh["id"])["merged_profile_ids"] == []
    with pytest.raises(ProfileNotFound):
        crm.get_profile(profile["id"])
    again, created = crm.resolve(phone, create=True)
    assert again["id"] == fresh["id"] and not created


def test_resolve_does_not_attach_an_erased_identifier_to_another_profile(
    crm: CrmService, profile: dict[str, Any]
) -> None:
    other = crm.create_profile([{"type": "app_user_id", "value": "u-other"}], {})
    crm.erase(profile["id"])
    for create in (False, True):
        found, created = crm.resolve(
            [
                {"type": "app_user_id", "value": "u-other"},
                {"type": "phone", "value": "13800138000"},
                {"type": "email", "value": "other@example.com"},
            ],
            create=create,
        )
        assert found["id"] == other["id"] and not created
        # The erased phone stays detached; the address nobody erased is attached.
        assert {(i["type"], i["value"]) for i in found["identifiers"]} == {
            ("app_user_id", "u-other"),
            ("email", "other@example.com"),
        }
    # Attaching it is an explicit act.
    patched = crm.update_profile(
        other["id"], {"identifiers": [{"type": "phone", "value": "13800138000"}]}
    )
    assert ("phone", "+8613800138000") in {(i["type"], i["value"]) for i in patched["identifiers"]}


def test_the_outbox_relays_every_event_exactly_once(
    crm: CrmService, engine: Engine, redis: Any
) -> None:
    for i in range(30):
        crm.create_profile([{"type": "app_user_id", "value": f"u{i}"}], {})
    assert relay_outbox(engine, t.outbox, redis, maxlen=10000, batch=7) == 7
    while relay_outbox(engine, t.outbox, redis, maxlen=10000, batch=7):
        pass
    entries = redis.xrange("sb:events:crm")
    assert len(entries) == 30 and len({f["id"] for _, f in entries}) == 30
    assert relay_outbox(engine, t.outbox, redis, maxlen=10000) == 0


def test_concurrent_relays_publish_every_event_exactly_once(
    db_url: str, engine: Engine, redis: Any
) -> None:
    with engine.begin() as conn:
        for i in range(200):
            add_to_outbox(
                conn, t.outbox, "sb:events:crm", Event.new("test.relayed", {"n": i}, source="t")
            )
    relays = 3
    engines = [make_engine(db_url, pool_size=1) for _ in range(relays)]

    def relay(i: int) -> int:
        relayed = 0
        # Until it finds nothing: the relays take turns.
        while moved := relay_outbox(engines[i], t.outbox, redis, maxlen=10000, batch=10):
            relayed += moved
        return relayed

    try:
        relayed = all_at_once(relays, relay)
    finally:
        for e in engines:
            e.dispose()
    assert sum(relayed) == 200
    entries = redis.xrange("sb:events:crm")
    published = [json.loads(f["data"])["n"] for _, f in entries]
    assert sorted(published) == list(range(200))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar_one() == 0
    # The relays take turns (write lock, row locks): no batch overtakes another.
    assert published == list(range(200))


def test_old_consumed_event_ids_are_pruned(engine: Engine) -> None:
    store = SqlStore(engine)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction() as tx:
        assert tx.seen_event("e-old", old) is False
        assert tx.seen_event("e-new", old + timedelta(days=30)) is False
    with store.transaction() as tx:
        assert tx.prune_inbox(old + timedelta(days=7)) == 1
        assert tx.seen_event("e-new", old) is True
