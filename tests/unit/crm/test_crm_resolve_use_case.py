"""Resolving identifiers to a profile as a use case, against in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.crm.common import Context
from services.crm.config import CrmConfig
from services.crm.domain.errors import ProfileNotFound
from services.crm.domain.identifiers import Identifier
from services.crm.profiles import insert_profile, resolve_in
from tests.unit.crm.fakes import Clock, FakeResolveTx

PHONE = Identifier("phone", "+8613800138000")
EMAIL = Identifier("email", "li@example.cn")


@pytest.fixture
def ctx() -> Context:
    return Context(CrmConfig(), Clock())


def test_identifiers_of_two_profiles_record_a_candidate_and_write_nothing_else(
    ctx: Context,
) -> None:
    tx = FakeResolveTx()
    a = str(insert_profile(tx, ctx, [PHONE], {})["id"])
    b = str(insert_profile(tx, ctx, [EMAIL], {})["id"])
    events = len(tx.events)

    resolved = resolve_in(tx, ctx, [PHONE, EMAIL], create=True, fields={})

    assert resolved.profile is None and set(resolved.conflict) == {a, b}
    [candidate] = tx.candidates(after=None, limit=10)
    assert candidate["identifier_types"] == ["email", "phone"]
    assert len(tx.events) == events and len(tx.profiles) == 2


def test_a_new_identifier_is_attached_unless_recently_erased(ctx: Context) -> None:
    tx = FakeResolveTx()
    pid = str(insert_profile(tx, ctx, [PHONE], {})["id"])
    erased = Identifier("email", "gone@example.cn")
    tx.suppress([ctx.digest(erased)], ctx.clock() + timedelta(days=30))

    resolved = resolve_in(tx, ctx, [PHONE, EMAIL, erased], create=False, fields={})

    assert resolved.profile is not None and resolved.profile["id"] == pid
    assert not resolved.created
    assert [i["value"] for i in resolved.profile["identifiers"]] == [PHONE.value, EMAIL.value]
    assert tx.locked == [pid]
    assert tx.kinds(pid)[-1] == "profile.identifiers_added"


def test_unknown_identifiers_create_only_when_asked(ctx: Context) -> None:
    tx = FakeResolveTx()
    with pytest.raises(ProfileNotFound):
        resolve_in(tx, ctx, [PHONE], create=False, fields={})
    assert tx.profiles == {}

    resolved = resolve_in(tx, ctx, [PHONE], create=True, fields={"tier": "gold"})

    assert resolved.created and resolved.profile is not None
    assert resolved.profile["tier"] == "gold"
    assert tx.types() == ["crm.profile.created"]
