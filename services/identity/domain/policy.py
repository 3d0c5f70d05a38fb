"""Tier policies: the model, its validation and the decision as a pure function.

``evaluate(policy, channel, satisfied, trusted_device)`` is the whole rule:
``min_factors`` distinct factors out of the channel's allowed list, at least
one of them a possession factor when ``require_possession``; a trusted device
counts as the ``trusted_device`` factor when the policy lets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.identity.domain.errors import PolicyInvalid

BUILTIN_FACTORS = ("totp", "sms_otp", "email_otp", "voice_otp", "kba", "trusted_device", "document")
# The built-in possession factors; with plugins, the registry's possession types are passed in.
POSSESSION = frozenset({"totp", "sms_otp", "email_otp", "voice_otp", "trusted_device"})
TIER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z")
CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}\Z")
# Channels a contact center has whether or not a policy names them: KPIs keep these (and
# the tiers and channels policies name) apart and fold any other name into "other", so a
# client sending made-up names cannot grow the metrics without bound.
COMMON_CHANNELS = frozenset(
    {"web", "app", "chat", "voice", "ivr", "email", "sms", "wechat", "whatsapp", "social"}
)
OTHER = "other"
MAX_ATTEMPTS_CEILING = 100  # NIST SP 800-63B 5.2.2: no more than 100 consecutive failures
DEFAULT_TIER = "default"


@dataclass(frozen=True)
class ChannelRule:
    allowed_factors: tuple[str, ...] | None = None
    min_factors: int | None = None
    require_possession: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.allowed_factors is not None:
            out["allowed_factors"] = list(self.allowed_factors)
        if self.min_factors is not None:
            out["min_factors"] = self.min_factors
        if self.require_possession is not None:
            out["require_possession"] = self.require_possession
        return out


@dataclass(frozen=True)
class Requirement:
    """What one channel of a tier demands."""

    min_factors: int
    allowed_factors: tuple[str, ...]
    require_possession: bool


@dataclass(frozen=True)
class TierPolicy:
    min_factors: int = 1
    allowed_factors: tuple[str, ...] = BUILTIN_FACTORS
    require_possession: bool = True
    trusted_device_counts: bool = True
    trusted_device_days: int = 30
    session_ttl_seconds: int = 1800
    reuse_across_channels: bool = True
    max_attempts: int = 5
    lockout_seconds: int = 900
    channels: Mapping[str, ChannelRule] = field(default_factory=dict)

    def requirement(self, channel: str) -> Requirement:
        rule = self.channels.get(channel)
        if rule is None:
            return Requirement(self.min_factors, self.allowed_factors, self.require_possession)
        return Requirement(
            rule.min_factors if rule.min_factors is not None else self.min_factors,
            rule.allowed_factors if rule.allowed_factors is not None else self.allowed_factors,
            rule.require_possession
            if rule.require_possession is not None
            else self.require_possession,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_factors": self.min_factors,
            "allowed_factors": list(self.allowed_factors),
            "require_possession": self.require_possession,
            "trusted_device_counts": self.trusted_device_counts,
            "trusted_device_days": self.trusted_device_days,
            "session_ttl_seconds": self.session_ttl_seconds,
            "reuse_across_channels": self.reuse_across_channels,
            "max_attempts": self.max_attempts,
            "lockout_seconds": self.lockout_seconds,
            "channels": {name: rule.to_dict() for name, rule in sorted(self.channels.items())},
        }


DEFAULT_POLICY = TierPolicy()

_INT_BOUNDS = {
    "min_factors": (1, 3),
    "trusted_device_days": (1, 365),
    "session_ttl_seconds": (60, 86400),
    "max_attempts": (1, MAX_ATTEMPTS_CEILING),
    "lockout_seconds": (1, 86400),
}
_BOOLS = ("require_possession", "trusted_device_counts", "reuse_across_channels")


def _check_factors(
    value: Any, known: frozenset[str], where: str, errors: dict[str, list[str]]
) -> tuple[str, ...] | None:
    if not isinstance(value, list | tuple) or not value:
        errors.setdefault(where, []).append("must be a non-empty list of factor types")
        return None
    unknown = sorted({str(v) for v in value} - known)
    if unknown:
        errors.setdefault(where, []).append(f"unknown factor types: {', '.join(unknown)}")
        return None
    if len(set(value)) != len(value):
        errors.setdefault(where, []).append("lists a factor type twice")
        return None
    return tuple(value)


def _check_feasible(
    req: Requirement,
    trusted_counts: bool,
    possession: frozenset[str],
    where: str,
    errors: dict[str, list[str]],
) -> None:
    usable = set(req.allowed_factors)
    if not trusted_counts:
        usable.discard("trusted_device")
    if req.min_factors > len(usable):
        errors.setdefault(where + "min_factors", []).append(
            f"needs {req.min_factors} factors but only {len(usable)} are allowed"
        )
    if req.require_possession and not usable & possession:
        errors.setdefault(where + "require_possession", []).append(
            "no allowed factor is a possession factor"
        )


def parse_policy(
    data: Mapping[str, Any],
    known_factors: Iterable[str] = BUILTIN_FACTORS,
    possession: Iterable[str] = POSSESSION,
) -> TierPolicy:
    """Build a policy from its JSON shape; every problem is reported at once.

    ``known_factors`` and ``possession`` come from the factor registry, so a plugin
    of category possession satisfies ``require_possession`` like a built-in one.
    """
    known = frozenset(known_factors)
    possessed = frozenset(possession)
    errors: dict[str, list[str]] = {}
    merged = {**DEFAULT_POLICY.to_dict(), **dict(data)}
    values: dict[str, Any] = {}
    for name, (low, high) in _INT_BOUNDS.items():
        raw = merged[name]
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            errors.setdefault(name, []).append(f"must be an integer from {low} to {high}")
        else:
            values[name] = raw
    for name in _BOOLS:
        if not isinstance(merged[name], bool):
            errors.setdefault(name, []).append("must be true or false")
        else:
            values[name] = merged[name]
    allowed = _check_factors(merged["allowed_factors"], known, "allowed_factors", errors)
    channels: dict[str, ChannelRule] = {}
    raw_channels = merged.get("channels") or {}
    if not isinstance(raw_channels, Mapping):
        errors.setdefault("channels", []).append("must be an object keyed by channel name")
        raw_channels = {}
    for name, raw in raw_channels.items():
        where = f"channels.{name}."
        if not isinstance(name, str) or not CHANNEL_NAME.match(name):
            errors.setdefault("channels", []).append(f"invalid channel name {name!r}")
            continue
        if not isinstance(raw, Mapping) or not raw:
            errors.setdefault(f"channels.{name}", []).append("must be a non-empty object")
            continue
        extra = set(raw) - {"allowed_factors", "min_factors", "require_possession"}
        if extra:
            errors.setdefault(f"channels.{name}", []).append(
                f"unknown fields: {', '.join(sorted(extra))}"
            )
            continue
        rule_allowed = None
        if "allowed_factors" in raw:
            rule_allowed = _check_factors(
                raw["allowed_factors"], known, where + "allowed_factors", errors
            )
            if rule_allowed is None:
                continue
        rule_min = raw.get("min_factors")
        if rule_min is not None and (
            isinstance(rule_min, bool) or not isinstance(rule_min, int) or not 1 <= rule_min <= 3
        ):
            errors.setdefault(where + "min_factors", []).append("must be an integer from 1 to 3")
            continue
        rule_pos = raw.get("require_possession")
        if rule_pos is not None and not isinstance(rule_pos, bool):
            errors.setdefault(where + "require_possession", []).append("must be true or false")
            continue
        channels[name] = ChannelRule(rule_allowed, rule_min, rule_pos)
    if errors or allowed is None:
        raise PolicyInvalid(errors)
    policy = TierPolicy(allowed_factors=allowed, channels=channels, **values)
    _check_feasible(policy.requirement(""), policy.trusted_device_counts, possessed, "", errors)
    for name in channels:
        _check_feasible(
            policy.requirement(name),
            policy.trusted_device_counts,
            possessed,
            f"channels.{name}.",
            errors,
        )
    if errors:
        raise PolicyInvalid(errors)
    return policy


@dataclass(frozen=True)
class Decision:
    approved: bool
    counted: tuple[str, ...]  # the satisfied factors that count on this channel
    still_needed: int  # how many more distinct factors are needed
    needs_possession: bool  # one of those must be a possession factor
    candidates: tuple[str, ...]  # factors that would help, in policy order

    @property
    def acr(self) -> str:
        return str(min(len(self.counted), 3))


def evaluate(
    policy: TierPolicy,
    channel: str,
    satisfied: Iterable[str],
    trusted_device: bool = False,
    possession: frozenset[str] = POSSESSION,
) -> Decision:
    """Approved, or what is still missing - a pure function of its inputs."""
    req = policy.requirement(channel)
    have = set(satisfied)
    if not policy.trusted_device_counts:
        have.discard("trusted_device")
    elif trusted_device:
        have.add("trusted_device")
    counted = tuple(f for f in req.allowed_factors if f in have)
    possession_ok = not req.require_possession or any(f in possession for f in counted)
    missing = max(0, req.min_factors - len(counted))
    needs_possession = not possession_ok
    still_needed = max(missing, 1 if needs_possession else 0)
    unused = [f for f in req.allowed_factors if f not in have and f != "trusted_device"]
    if needs_possession and still_needed == 1:
        unused = [f for f in unused if f in possession]
    return Decision(
        approved=still_needed == 0,
        counted=counted,
        still_needed=still_needed,
        needs_possession=needs_possession,
        candidates=tuple(unused) if still_needed else (),
    )
