"""Tier policies, their audit stream, and the projection of CRM profiles."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from services.identity.adapters.redis.base import RedisBase, _j
from services.identity.adapters.redis.keys import AUDIT, POLICIES, ckey, erased_key
from services.identity.adapters.redis.scripts import lua
from services.identity.ports import AuditPage
from shared.events import Event


class RedisPolicies(RedisBase):
    def get_policy(self, tier: str) -> dict[str, Any] | None:
        raw = self.r.hget(POLICIES, tier)
        return json.loads(raw) if raw else None

    def list_policies(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.r.hgetall(POLICIES).items()}

    def save_policy(
        self, tier: str, policy: dict[str, Any] | None, audit: dict[str, Any], events: list[Event]
    ) -> None:
        with self.r.pipeline(transaction=True) as pipe:
            if policy is None:
                pipe.hdel(POLICIES, tier)
            else:
                pipe.hset(POLICIES, tier, _j(policy))
            pipe.xadd(AUDIT, {"entry": _j(audit)}, maxlen=100_000, approximate=True)
            self._stage(pipe, events, None)
            pipe.execute()

    def audit(self, limit: int, before: str | None) -> AuditPage:
        upper = f"({before}" if before else "+"
        rows = self.r.xrevrange(AUDIT, max=upper, min="-", count=limit + 1)
        items = [{"id": eid, **json.loads(f["entry"])} for eid, f in rows[:limit]]
        return AuditPage(items, rows[limit - 1][0] if len(rows) > limit else None)

    def policies_raw(self, *tiers: str) -> list[str | None]:
        return list(self.r.hmget(POLICIES, list(tiers)))

    def profile(self, cid: str) -> dict[str, str]:
        """The CRM's projected fields (tier, language, merged_into), without its clock."""
        fields: dict[str, str] = self.r.hgetall(ckey(cid, "profile"))
        fields.pop("as_of", None)
        return fields

    def stage_profile(self, pipe: Any, cid: str, fields: Mapping[str, str], at_ms: int) -> None:
        """Project ``fields`` as of ``at_ms`` (the event's time), unless newer ones are held."""
        pairs = [x for kv in fields.items() for x in kv]
        # EVAL, not EVALSHA: the script text travels in any pipeline, on a cluster too
        # (whose pipeline refuses .eval(), not the command).
        keys = (ckey(cid, "profile"), erased_key(cid))
        pipe.execute_command("EVAL", lua("project"), 2, *keys, at_ms, 0, *pairs)

    def stage_unmerge(self, pipe: Any, cid: str, at_ms: int) -> None:
        keys = (ckey(cid, "profile"), erased_key(cid))
        pipe.execute_command("EVAL", lua("project"), 2, *keys, at_ms, 1, "merged_into")

    def project(self, delivery: Any, changes: Sequence[tuple[str, Mapping[str, str], int]]) -> None:
        """Project each (customer, fields, event time) in one effect of ``delivery``."""
        with self._effect(delivery) as pipe:
            for cid, fields, at_ms in changes:
                self.stage_profile(pipe, cid, fields, at_ms)

    def unmerge(self, delivery: Any, cid: str, at_ms: int) -> None:
        with self._effect(delivery) as pipe:
            self.stage_unmerge(pipe, cid, at_ms)

    @contextmanager
    def _effect(self, delivery: Any) -> Iterator[Any]:
        """Standalone: exactly once with ``delivery.atomic()``. On a cluster the
        processed-id keys are in the group's slot, not the customer's, so the writes go
        alone; setting the same projected fields again changes nothing."""
        if not self.cluster:
            with delivery.atomic() as pipe:
                yield pipe
            return
        with self.r.pipeline(transaction=False) as pipe:
            yield pipe
            pipe.execute()
