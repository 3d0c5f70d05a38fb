"""Merge and unmerge as use cases, against in-memory fakes of their ports (no database:
the SQL adapters have their own tests on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from services.crm.common import Context, live
from services.crm.config import CrmConfig
from services.crm.domain.errors import MergeNotFound, MergeRefused, ProfileMoved
from services.crm.domain.identifiers import Identifier
from services.crm.merging import merge_in, unmerge_in
from services.crm.profiles import insert_profile
from tests.unit.crm.fakes import Clock, FakeMergingTx

PHONE = Identifier("phone", "+8613800138000")
EMAIL = Identifier("email", "li@example.cn")
OTHER = Identifier("email", "wei@example.cn")


@pytest.fixture
def ctx() -> Context:
    return Context(CrmConfig(), Clock())


@pytest.fixture
def tx() -> FakeMergingTx:
    return FakeMergingTx()


def profile(tx: FakeMergingTx, ctx: Context, *idents: Identifier, **fields: object) -> str:
    return str(insert_profile(tx, ctx, list(idents), fields)["id"])


def snapshot(tx: FakeMergingTx) -> object:
    return (
        {k: dict(v) for k, v in tx.profiles.items()},
        {t: {k: dict(r) for k, r in rows.items()} for t, rows in tx.tables.items()},
        dict(tx.merges),
        dict(tx.candidate_pairs),
        len(tx.events),
    )


def test_merge_moves_everything_and_leaves_a_tombstone(tx: FakeMergingTx, ctx: Context) -> None:
    survivor = profile(tx, ctx, PHONE, name="Li Wei")
    source = profile(tx, ctx, EMAIL, language="zh")
    tx.record_candidate(survivor, source, ["phone"], ctx.clock())

    result = merge_in(tx, ctx, survivor, source, dry_run=False)

    assert result["merge_id"] in tx.merges
    assert result["moved"] == {"identifiers": 1, "interactions": 0, "cases": 0, "timeline": 1}
    assert {(i["type"], i["value"]) for i in result["profile"]["identifiers"]} == {
        (PHONE.type, PHONE.value),
        (EMAIL.type, EMAIL.value),
    }
    assert result["profile"]["language"] == "zh" and result["profile"]["name"] == "Li Wei"
    assert tx.profiles[source]["status"] == "merged"
    assert tx.profiles[source]["merged_into"] == survivor
    assert tx.identifiers_of([source]) == []
    assert tx.candidates(after=None, limit=10) == []
    assert "profile.merged" in tx.kinds(survivor)
    assert tx.types()[-2:] == ["crm.profile.merged", "crm.profile.updated"]
    assert tx.events[-1].data["changed"] == ["language"]
    with pytest.raises(ProfileMoved) as moved:
        live(tx, source)
    assert moved.value.survivor_id == survivor
    assert sorted(set(tx.locked)) == sorted({survivor, source})


def test_a_dry_run_previews_and_writes_nothing(tx: FakeMergingTx, ctx: Context) -> None:
    survivor = profile(tx, ctx, PHONE)
    source = profile(tx, ctx, EMAIL, OTHER, name="Wei")
    before = snapshot(tx)

    result = merge_in(tx, ctx, survivor, source, dry_run=True)

    assert snapshot(tx) == before
    assert result["merge_id"] is None and result["dry_run"] is True
    assert result["profile"]["name"] == "Wei"
    assert len(result["profile"]["identifiers"]) == 3


def test_refused_merges_write_nothing(tx: FakeMergingTx, ctx: Context) -> None:
    a = profile(tx, ctx, PHONE)
    b = profile(tx, ctx, EMAIL)
    c = profile(tx, ctx, OTHER)
    merge_in(tx, ctx, a, b, dry_run=False)
    before = snapshot(tx)

    with pytest.raises(MergeRefused, match="into itself"):
        merge_in(tx, ctx, a, a, dry_run=False)
    with pytest.raises(MergeRefused, match="already merged") as tomb:
        merge_in(tx, ctx, c, b, dry_run=False)
    assert tomb.value.profile_ids == [c, b]
    with pytest.raises(ProfileMoved):  # a tombstone cannot survive: 308 to its survivor
        merge_in(tx, ctx, b, c, dry_run=False)
    assert snapshot(tx) == before


def test_unmerge_gives_the_source_back_everything_it_brought(
    tx: FakeMergingTx, ctx: Context
) -> None:
    survivor = profile(tx, ctx, PHONE, name="Li Wei")
    source = profile(tx, ctx, EMAIL, language="zh", tier="gold")
    merge_id = merge_in(tx, ctx, survivor, source, dry_run=False)["merge_id"]

    result = unmerge_in(tx, ctx, survivor, merge_id)

    assert result["merge_id"] == merge_id
    assert [i["value"] for i in result["source"]["identifiers"]] == [EMAIL.value]
    assert [i["value"] for i in result["survivor"]["identifiers"]] == [PHONE.value]
    assert result["source"]["tier"] == "gold" and result["source"]["language"] == "zh"
    assert result["survivor"]["language"] is None
    assert tx.profiles[source]["status"] == "active"
    assert tx.profiles[source]["merged_into"] is None
    assert tx.merges[merge_id]["status"] == "unmerged"
    assert tx.merges[merge_id]["unmerged_at"] is not None
    assert "profile.unmerged" in tx.kinds(survivor) and "profile.unmerged" in tx.kinds(source)
    assert "crm.profile.unmerged" in tx.types()
    assert live(tx, source)["id"] == source


def test_unmerge_refuses_twice_unknown_and_out_of_order(tx: FakeMergingTx, ctx: Context) -> None:
    a = profile(tx, ctx, PHONE)
    b = profile(tx, ctx, EMAIL)
    c = profile(tx, ctx, OTHER)
    first = merge_in(tx, ctx, a, b, dry_run=False)["merge_id"]
    later = merge_in(tx, ctx, c, a, dry_run=False)["merge_id"]
    before = snapshot(tx)

    with pytest.raises(MergeRefused, match=f"unmerge that merge \\({later}\\) on {c} first"):
        unmerge_in(tx, ctx, a, first)
    with pytest.raises(MergeNotFound):
        unmerge_in(tx, ctx, c, "m-unknown")
    with pytest.raises(MergeNotFound):  # a merge is undone on its own survivor only
        unmerge_in(tx, ctx, c, first)
    assert snapshot(tx) == before

    unmerge_in(tx, ctx, c, later)
    unmerge_in(tx, ctx, a, first)
    with pytest.raises(MergeRefused, match="already undone"):
        unmerge_in(tx, ctx, a, first)
    assert {p["status"] for p in tx.profiles.values()} == {"active"}
