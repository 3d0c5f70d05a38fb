"""Identity resolution decisions, merge and unmerge rules."""

from __future__ import annotations

import pytest

from services.crm.domain.errors import MergeRefused
from services.crm.domain.identifiers import Identifier
from services.crm.domain.merge import (
    ProfileValues,
    check_mergeable,
    plan_merge,
    plan_unmerge,
    source_after_unmerge,
)
from services.crm.domain.resolution import Outcome, decide

PHONE = Identifier("phone", "+8613800138000")
EMAIL = Identifier("email", "li@example.com")
WECHAT = Identifier("wechat_openid", "oX1")


def test_identifiers_of_one_profile_resolve_to_it_and_list_what_it_lacks() -> None:
    result = decide([PHONE, EMAIL], {PHONE: "p1"}, create=False)
    assert result.outcome is Outcome.RESOLVED
    assert result.profile_id == "p1" and result.missing == (EMAIL,)


def test_identifiers_of_two_profiles_are_a_conflict_naming_both() -> None:
    result = decide([PHONE, EMAIL, WECHAT], {PHONE: "p2", EMAIL: "p1", WECHAT: "p2"}, create=True)
    assert result.outcome is Outcome.CONFLICT and result.profile_ids == ("p1", "p2")


def test_unknown_identifiers_create_only_when_asked() -> None:
    assert decide([PHONE], {}, create=True).outcome is Outcome.CREATE
    assert decide([PHONE], {}, create=False).outcome is Outcome.NOT_FOUND


SURVIVOR = ProfileValues("Li Wei", "gold", None, {"city": "Shanghai", "vip_since": "2020"})
SOURCE = ProfileValues("Wei Li", "default", "zh", {"city": "Beijing", "newsletter": True})


def test_survivor_wins_conflicts_and_the_losers_values_are_kept() -> None:
    plan = plan_merge(SURVIVOR, SOURCE, default_tier="default")
    assert plan.result.name == "Li Wei" and plan.result.attributes["city"] == "Shanghai"
    assert plan.conflicts["name"] == {"survivor": "Li Wei", "source": "Wei Li"}
    assert plan.conflicts["attributes.city"] == {"survivor": "Shanghai", "source": "Beijing"}


def test_what_the_survivor_lacks_is_filled_from_the_source() -> None:
    plan = plan_merge(SURVIVOR, SOURCE, default_tier="default")
    assert plan.result.language == "zh" and plan.result.attributes["newsletter"] is True
    assert set(plan.filled) == {"language", "attributes.newsletter"}
    assert plan.result.tier == "gold"


def test_a_default_tier_is_upgraded_by_the_sources_tier() -> None:
    plain = ProfileValues("A", "default", None, {})
    plan = plan_merge(plain, ProfileValues(None, "gold", None, {}), default_tier="default")
    assert plan.result.tier == "gold"


def test_unmerge_takes_back_what_the_source_brought_and_restores_it() -> None:
    plan = plan_merge(SURVIVOR, SOURCE, default_tier="default")
    record = plan.record(SURVIVOR, SOURCE)
    after = plan_unmerge(plan.result, record)
    assert after == SURVIVOR
    assert source_after_unmerge(record) == SOURCE


def test_unmerge_keeps_what_changed_on_the_survivor_since_the_merge() -> None:
    plan = plan_merge(SURVIVOR, SOURCE, default_tier="default")
    record = plan.record(SURVIVOR, SOURCE)
    edited = ProfileValues(
        "Li Wei", "platinum", "en", {**plan.result.attributes, "newsletter": False}
    )
    after = plan_unmerge(edited, record)
    assert after.tier == "platinum" and after.language == "en"
    assert after.attributes["newsletter"] is False


def test_a_profile_is_never_merged_into_itself_or_merged_twice() -> None:
    with pytest.raises(MergeRefused):
        check_mergeable("p1", "p1", source_active=True)
    with pytest.raises(MergeRefused):
        check_mergeable("p1", "p2", source_active=False)
