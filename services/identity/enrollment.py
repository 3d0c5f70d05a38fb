"""Use cases of factors: enroll, confirm, list, remove."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.identity.common import iso, new_event
from services.identity.delivery_guard import DeliveryGuard
from services.identity.domain.errors import CodeRejected, EnrollmentInvalid, NotFound
from services.identity.domain.factors import FactorRecord, FactorRegistry
from services.identity.factor_env import PluginEnv
from services.identity.ports import FactorStore


class Enrollment:
    def __init__(
        self,
        store: FactorStore,
        registry: FactorRegistry,
        env: PluginEnv,
        clock: Callable[[], float],
        guard: DeliveryGuard | None = None,
    ) -> None:
        self.store, self.registry, self.env, self.clock = store, registry, env, clock
        self.guard = guard

    @staticmethod
    def _view(record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "factor_id": record["factor_id"],
            "type": record["type"],
            "status": record["status"],
            "created_at": iso(record["created_at"]),
            **record.get("public", {}),
        }

    def enroll(self, cid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        factor_type = str(params.get("type", ""))
        plugin = self.registry.get(factor_type)
        if not plugin.enrollable:
            raise EnrollmentInvalid(
                f"{factor_type} is not enrolled through this endpoint",
                {"type": [f"{factor_type} cannot be enrolled."]},
            )
        enrollment = plugin.enroll(self.env, cid, params)
        if self.guard is not None:
            self.guard.screen_enrollment(cid, plugin, enrollment, self.store.factors(cid))
        record = {
            "factor_id": self.store.new_id("f", cid),
            "type": factor_type,
            "status": enrollment.status,
            "created_at": self.clock(),
            "data": enrollment.data,
            "public": enrollment.public,
        }
        events = []
        if enrollment.status == "active":
            events.append(
                new_event(
                    "identity.factor.enrolled",
                    customer_id=cid,
                    factor_id=record["factor_id"],
                    type=factor_type,
                )
            )
        self.store.save_factor(cid, record, events)
        return {**self._view(record), **enrollment.response}

    def confirm(self, cid: str, fid: str, params: Mapping[str, Any]) -> dict[str, Any]:
        raw = self.store.factor(cid, fid)
        if raw is None:
            raise NotFound("no such factor")
        if raw["status"] == "active":
            return self._view(raw)
        plugin = self.registry.get(raw["type"])
        if not plugin.confirm(self.env, FactorRecord(**raw), params):
            raise CodeRejected("the code does not match; try the current code")
        raw["status"] = "active"
        event = new_event(
            "identity.factor.enrolled", customer_id=cid, factor_id=fid, type=raw["type"]
        )
        self.store.save_factor(cid, raw, [event])
        return self._view(raw)

    def list_factors(self, cid: str) -> list[dict[str, Any]]:
        return [self._view(r) for r in self.store.factors(cid)]

    def remove_factor(self, cid: str, fid: str) -> None:
        raw = self.store.factor(cid, fid)
        if raw is None:
            raise NotFound("no such factor")
        event = new_event(
            "identity.factor.removed", customer_id=cid, factor_id=fid, type=raw["type"]
        )
        self.store.delete_factor(cid, fid, [event])
