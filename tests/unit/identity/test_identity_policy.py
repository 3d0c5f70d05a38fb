from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.identity.domain.errors import PolicyInvalid
from services.identity.domain.policy import (
    BUILTIN_FACTORS,
    POSSESSION,
    TierPolicy,
    evaluate,
    parse_policy,
)

GOLD = {
    "min_factors": 2,
    "allowed_factors": list(BUILTIN_FACTORS),
    "require_possession": True,
    "channels": {"voice": {"allowed_factors": ["voice_otp", "kba", "trusted_device"]}},
}


def test_a_valid_policy_round_trips_through_its_json_shape() -> None:
    policy = parse_policy(GOLD)
    assert parse_policy(policy.to_dict()) == policy
    assert policy.requirement("voice").allowed_factors == ("voice_otp", "kba", "trusted_device")
    assert policy.requirement("chat").allowed_factors == BUILTIN_FACTORS


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_factors": 3, "allowed_factors": ["totp", "kba"]}, "min_factors"),
        ({"allowed_factors": ["totp", "retina"]}, "allowed_factors"),
        ({"allowed_factors": []}, "allowed_factors"),
        ({"allowed_factors": ["totp", "totp"]}, "allowed_factors"),
        ({"session_ttl_seconds": 0}, "session_ttl_seconds"),
        ({"lockout_seconds": -5}, "lockout_seconds"),
        ({"trusted_device_days": 0}, "trusted_device_days"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"reuse_across_channels": "yes"}, "reuse_across_channels"),
        ({"allowed_factors": ["kba", "document"]}, "require_possession"),
        ({"channels": {"voice": {"allowed_factors": ["kba"]}}}, "channels.voice.min_factors"),
        (
            {"channels": {"voice": {"allowed_factors": ["kba", "x"]}}},
            "channels.voice.allowed_factors",
        ),
        ({"channels": {"voice": {"colour": "red"}}}, "channels.voice"),
        ({"channels": {"Voice Line": {"min_factors": 1}}}, "channels"),
        (
            {
                "min_factors": 2,
                "trusted_device_counts": False,
                "allowed_factors": ["totp", "trusted_device"],
            },
            "min_factors",
        ),
    ],
)
def test_invalid_policies_name_the_offending_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy({**GOLD, **change})
    assert field in caught.value.errors


def test_two_factors_with_possession_are_approved() -> None:
    decision = evaluate(parse_policy(GOLD), "chat", {"totp", "kba"})
    assert decision.approved and decision.counted == ("totp", "kba") and decision.acr == "2"


def test_two_knowledge_factors_still_need_a_possession_factor() -> None:
    decision = evaluate(parse_policy(GOLD), "chat", {"kba", "document"})
    assert not decision.approved
    assert decision.still_needed == 1 and decision.needs_possession
    assert set(decision.candidates) <= POSSESSION


def test_a_trusted_device_counts_as_possession_when_the_policy_says_so() -> None:
    policy = parse_policy(GOLD)
    assert evaluate(policy, "chat", {"kba"}, trusted_device=True).approved
    strict = parse_policy({**GOLD, "trusted_device_counts": False})
    assert not evaluate(strict, "chat", {"kba"}, trusted_device=True).approved


def test_factors_outside_the_channel_list_do_not_count() -> None:
    decision = evaluate(parse_policy(GOLD), "voice", {"totp", "kba"})
    assert not decision.approved
    assert decision.counted == ("kba",)
    assert decision.candidates == ("voice_otp",)


def test_step_up_asks_only_for_what_is_missing() -> None:
    decision = evaluate(parse_policy(GOLD), "chat", {"sms_otp"})
    assert decision.still_needed == 1 and not decision.needs_possession
    assert "sms_otp" not in decision.candidates and "trusted_device" not in decision.candidates


factor_sets = st.sets(st.sampled_from(BUILTIN_FACTORS))
policies = st.builds(
    lambda allowed, min_f, pos, tdc: TierPolicy(
        min_factors=min(min_f, len(allowed)),
        allowed_factors=tuple(f for f in BUILTIN_FACTORS if f in allowed),
        require_possession=pos,
        trusted_device_counts=tdc,
    ),
    st.sets(st.sampled_from(BUILTIN_FACTORS), min_size=1),
    st.integers(1, 3),
    st.booleans(),
    st.booleans(),
)
channels = st.sampled_from(["chat", "voice"])


@given(policies, channels, factor_sets, st.booleans())
def test_approval_means_enough_distinct_allowed_factors_with_possession(
    policy: TierPolicy, channel: str, satisfied: set[str], trusted: bool
) -> None:
    decision = evaluate(policy, channel, satisfied, trusted)
    req = policy.requirement(channel)
    assert set(decision.counted) <= set(req.allowed_factors)
    if decision.approved:
        assert len(decision.counted) >= req.min_factors
        assert not req.require_possession or set(decision.counted) & POSSESSION
        assert decision.candidates == ()
    else:
        assert decision.still_needed >= 1


@given(policies, channels, factor_sets, factor_sets, st.booleans())
def test_more_satisfied_factors_never_undo_an_approval(
    policy: TierPolicy, channel: str, some: set[str], more: set[str], trusted: bool
) -> None:
    if evaluate(policy, channel, some, trusted).approved:
        assert evaluate(policy, channel, some | more, trusted).approved
        assert evaluate(policy, channel, some, True).approved


@given(policies, channels, factor_sets, st.booleans())
def test_satisfying_one_candidate_never_raises_what_is_needed(
    policy: TierPolicy, channel: str, satisfied: set[str], trusted: bool
) -> None:
    decision = evaluate(policy, channel, satisfied, trusted)
    for candidate in decision.candidates:
        after = evaluate(policy, channel, satisfied | {candidate}, trusted)
        assert after.still_needed == decision.still_needed - 1


def test_a_possession_factor_named_by_the_registry_satisfies_require_possession() -> None:
    data = {"min_factors": 1, "allowed_factors": ["kba", "push"], "require_possession": True}
    known = (*BUILTIN_FACTORS, "push")
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy(data, known)  # push is unknown as possession
    assert "require_possession" in refused.value.errors
    policy = parse_policy(data, known, POSSESSION | {"push"})
    assert evaluate(policy, "chat", ["push"], possession=POSSESSION | {"push"}).approved
    assert not evaluate(policy, "chat", ["kba"], possession=POSSESSION | {"push"}).approved
