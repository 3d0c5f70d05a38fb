"""Per-channel overrides of a tier policy, checked against an oracle written here.

The policies are generated in their JSON shape and go through ``parse_policy``, so
the test covers validation (which policies are feasible) as well as ``evaluate``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from services.identity.domain.errors import PolicyInvalid
from services.identity.domain.policy import evaluate, parse_policy

# From API.md, not from the module under test.
FACTORS = ("totp", "sms_otp", "email_otp", "voice_otp", "kba", "trusted_device", "document")
POSSESSION = {"totp", "sms_otp", "email_otp", "voice_otp", "trusted_device"}
OVERRIDDEN = ("voice", "chat")
CHANNELS = (*OVERRIDDEN, "web")  # web never has an override: it uses the tier's own rule


def factor_lists(min_size: int = 1) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(FACTORS), min_size=min_size, unique=True)


overrides = st.fixed_dictionaries(
    {},
    optional={
        "allowed_factors": factor_lists(),
        "min_factors": st.integers(1, 3),
        "require_possession": st.booleans(),
    },
).filter(bool)
policies = st.fixed_dictionaries(
    {
        "min_factors": st.integers(1, 3),
        "allowed_factors": factor_lists(),
        "require_possession": st.booleans(),
        "trusted_device_counts": st.booleans(),
        "channels": st.dictionaries(st.sampled_from(OVERRIDDEN), overrides, min_size=1),
    }
)


def rule(policy: dict[str, Any], channel: str) -> tuple[list[str], int, bool]:
    """(allowed in policy order, min factors, possession required) on ``channel``."""
    override = policy["channels"].get(channel, {})
    return (
        override.get("allowed_factors", policy["allowed_factors"]),
        override.get("min_factors", policy["min_factors"]),
        override.get("require_possession", policy["require_possession"]),
    )


def feasible(policy: dict[str, Any]) -> bool:
    for channel in CHANNELS:
        allowed, least, possession = rule(policy, channel)
        usable = set(allowed) - (set() if policy["trusted_device_counts"] else {"trusted_device"})
        if least > len(usable) or (possession and not usable & POSSESSION):
            return False
    return True


def oracle(
    policy: dict[str, Any], channel: str, satisfied: set[str], trusted: bool
) -> dict[str, Any]:
    allowed, least, possession = rule(policy, channel)
    have = set(satisfied)
    if not policy["trusted_device_counts"]:
        have.discard("trusted_device")
    elif trusted:
        have.add("trusted_device")
    counted = [f for f in allowed if f in have]
    lacks_possession = possession and not set(counted) & POSSESSION
    needed = max(least - len(counted), 1 if lacks_possession else 0)
    helpful = [f for f in allowed if f not in have and f != "trusted_device"]
    if lacks_possession and needed == 1:  # the one factor still needed must be possession
        helpful = [f for f in helpful if f in POSSESSION]
    return {
        "approved": needed == 0,
        "counted": tuple(counted),
        "still_needed": needed,
        "needs_possession": lacks_possession,
        "candidates": tuple(helpful) if needed else (),
    }


@given(policies)
def test_a_policy_is_accepted_exactly_when_every_channel_can_be_satisfied(
    raw: dict[str, Any],
) -> None:
    try:
        parse_policy(raw)
    except PolicyInvalid as exc:
        note(f"errors: {exc.errors}")
        assert not feasible(raw)
    else:
        assert feasible(raw)


@given(
    policies.filter(feasible),
    st.sampled_from(CHANNELS),
    st.sets(st.sampled_from(FACTORS)),
    st.booleans(),
)
def test_evaluation_with_channel_overrides_matches_the_oracle(
    raw: dict[str, Any], channel: str, satisfied: set[str], trusted: bool
) -> None:
    policy = parse_policy(raw)
    decision = evaluate(policy, channel, satisfied, trusted)
    expected = oracle(raw, channel, satisfied, trusted)
    assert {
        "approved": decision.approved,
        "counted": decision.counted,
        "still_needed": decision.still_needed,
        "needs_possession": decision.needs_possession,
        "candidates": decision.candidates,
    } == expected
    assert decision.acr == str(min(len(expected["counted"]), 3))


@given(policies.filter(feasible), st.sampled_from(OVERRIDDEN))
def test_an_override_round_trips_and_only_changes_its_own_channel(
    raw: dict[str, Any], channel: str
) -> None:
    policy = parse_policy(raw)
    assert parse_policy(policy.to_dict()) == policy
    req = policy.requirement(channel)
    assert (list(req.allowed_factors), req.min_factors, req.require_possession) == rule(
        raw, channel
    )
    web = policy.requirement("web")
    assert (web.allowed_factors, web.min_factors, web.require_possession) == (
        tuple(raw["allowed_factors"]),
        raw["min_factors"],
        raw["require_possession"],
    )
