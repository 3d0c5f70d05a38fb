"""Use cases of tier policies: read, put, delete, audit; the policy of a customer."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from services.identity.common import Result, iso, new_event
from services.identity.domain.errors import NotFound, PolicyInvalid, PolicyProtected
from services.identity.domain.factors import FactorRegistry
from services.identity.domain.policy import (
    DEFAULT_POLICY,
    DEFAULT_TIER,
    TIER_NAME,
    TierPolicy,
    parse_policy,
)
from services.identity.ports import AuditPage, PolicyStore


class Policies:
    def __init__(
        self, store: PolicyStore, registry: FactorRegistry, clock: Callable[[], float]
    ) -> None:
        self.store, self.registry, self.clock = store, registry, clock
        self._policies: dict[str, TierPolicy] = {}

    @property
    def possession(self) -> frozenset[str]:
        """Factor types of category possession, plugins included (read per use: a plugin
        registered after start-up counts too)."""
        return self.registry.possession_types()

    def _parsed(self, raw: str | None) -> TierPolicy:
        if raw is None:
            return DEFAULT_POLICY
        policy = self._policies.get(raw)
        if policy is None:  # stored policies were validated on PUT; parse each text once
            if len(self._policies) > 1000:
                self._policies.clear()
            policy = self._policies[raw] = parse_policy(
                json.loads(raw), self.registry.types(), self.possession
            )
        return policy

    def policy(self, tier: str, stored: Mapping[str, str] | None = None) -> TierPolicy:
        """The tier's policy, else the default tier's, else the built-in default."""
        if stored is None:
            own, default = self.store.policies_raw(tier, DEFAULT_TIER)
        else:
            own, default = stored.get(tier), stored.get(DEFAULT_TIER)
        return self._parsed(own if own is not None else default)

    def policies(self) -> list[dict[str, Any]]:
        stored = self.store.list_policies()
        stored.setdefault(DEFAULT_TIER, DEFAULT_POLICY.to_dict())
        return [{"tier": t, **stored[t]} for t in sorted(stored)]

    def get_policy(self, tier: str) -> dict[str, Any]:
        raw = self.store.get_policy(tier)
        if raw is None:
            if tier != DEFAULT_TIER:
                raise NotFound(f"no policy for tier {tier!r}")
            raw = DEFAULT_POLICY.to_dict()
        return {"tier": tier, **raw}

    def put_policy(self, tier: str, data: Mapping[str, Any], who: str) -> Result:
        if not TIER_NAME.match(tier):
            raise PolicyInvalid({"tier": ["tier names are [a-z0-9][a-z0-9_-]{0,39}"]})
        policy = parse_policy(data, self.registry.types(), self.possession).to_dict()
        before = self.store.get_policy(tier)
        now = self.clock()
        audit = {
            "who": who,
            "at": iso(now),
            "tier": tier,
            "action": "put",
            "before": before,
            "after": policy,
        }
        event = new_event("identity.policy.changed", tier=tier, action="put", changed_by=who)
        self.store.save_policy(tier, policy, audit, [event])
        return Result({"tier": tier, **policy}, 201 if before is None else 200)

    def delete_policy(self, tier: str, who: str) -> None:
        if tier == DEFAULT_TIER:
            raise PolicyProtected("the default tier always exists and cannot be deleted")
        before = self.store.get_policy(tier)
        if before is None:
            raise NotFound(f"no policy for tier {tier!r}")
        audit = {
            "who": who,
            "at": iso(self.clock()),
            "tier": tier,
            "action": "delete",
            "before": before,
            "after": None,
        }
        event = new_event("identity.policy.changed", tier=tier, action="delete", changed_by=who)
        self.store.save_policy(tier, None, audit, [event])

    def tier_of(self, cid: str, hint: str | None, profile: Mapping[str, str] | None = None) -> str:
        projected = (self.store.profile(cid) if profile is None else profile).get("tier")
        for tier in (projected, hint):
            if tier and TIER_NAME.match(tier):
                return tier
        return DEFAULT_TIER

    def audit(self, limit: int, before: str | None) -> AuditPage:
        """Policy changes, newest first."""
        return self.store.audit(limit, before)
