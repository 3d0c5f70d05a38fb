"""Opening a case as a use case, against in-memory fakes of its ports."""

from __future__ import annotations

from datetime import timedelta

from services.crm.cases import create_case_in
from services.crm.common import Context
from services.crm.config import CrmConfig
from services.crm.domain.identifiers import Identifier
from services.crm.merging import merge_in
from services.crm.profiles import insert_profile
from tests.unit.crm.fakes import Clock, FakeCasesTx, FakeMergingTx

PHONE = Identifier("phone", "+8613800138000")


def contact(profile_id: str, subject: str, channel: str = "phone") -> dict[str, str]:
    return {"profile_id": profile_id, "channel": channel, "subject": subject}


def test_a_similar_contact_joins_the_open_case_instead_of_opening_another() -> None:
    ctx = Context(CrmConfig(case_numbers=iter(["C-1", "C-2"]).__next__), Clock())
    tx = FakeCasesTx()
    pid = str(insert_profile(tx, ctx, [PHONE], {})["id"])
    fields = contact(pid, "where is my refund")
    found = ctx.config.classifier.classify(fields["subject"])

    case, merged = create_case_in(tx, ctx, fields, found)
    assert not merged and case["status"] == "new" and case["case_number"] == "C-1"
    again, merged = create_case_in(tx, ctx, contact(pid, "refund still missing", "chat"), found)

    assert merged and again["id"] == case["id"] and again["merged"] is True
    assert again["contacts"] == 2 and again["channels"] == ["chat", "phone"]
    assert len(tx.tables["cases"]) == 1
    [joined] = tx.rows_of("interactions", [pid])
    assert joined["case_id"] == case["id"] and joined["summary"] == "refund still missing"
    assert tx.types()[-2:] == ["crm.case.created", "crm.case.updated"]
    assert tx.events[-1].data["merged"] is True
    assert tx.kinds(pid)[-2:] == ["case.created", "case.contact_added"]


def test_a_contact_past_the_merge_window_opens_a_new_case() -> None:
    clock = Clock()
    ctx = Context(CrmConfig(case_numbers=iter(["C-1", "C-2"]).__next__), clock)
    tx = FakeCasesTx()
    pid = str(insert_profile(tx, ctx, [PHONE], {})["id"])
    found = ctx.config.classifier.classify("where is my refund")
    create_case_in(tx, ctx, contact(pid, "where is my refund"), found)
    clock.now += ctx.config.cases.merge_window + timedelta(minutes=1)

    case, merged = create_case_in(tx, ctx, contact(pid, "where is my refund"), found)

    assert not merged and case["case_number"] == "C-2"
    assert len(tx.tables["cases"]) == 2


def test_a_case_for_a_merged_away_profile_opens_on_its_survivor() -> None:
    ctx = Context(CrmConfig(case_numbers=lambda: "C-1"), Clock())
    profiles = FakeMergingTx()
    survivor = str(insert_profile(profiles, ctx, [PHONE], {})["id"])
    source = str(insert_profile(profiles, ctx, [], {})["id"])
    merge_in(profiles, ctx, survivor, source, dry_run=False)
    tx = FakeCasesTx()
    tx.profiles = profiles.profiles

    case, _ = create_case_in(
        tx, ctx, contact(source, "hello"), ctx.config.classifier.classify("hello")
    )

    assert case["profile_id"] == survivor
    assert tx.locked == [survivor]
