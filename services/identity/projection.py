"""Use cases of the CRM's events: project a profile's tier, follow merges, erase.

Each takes the event's time (ms), which orders a customer's projection: an older event
delivered late never overwrites a newer one, nor recreates an erased customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.identity.ports import ProjectionStore


class Projection:
    def __init__(self, store: ProjectionStore) -> None:
        self.store = store

    def profile_changed(self, delivery: Any, cid: str, data: Mapping[str, Any], at_ms: int) -> None:
        fields = {k: str(data[k]) for k in ("tier", "language") if data.get(k)}
        if "language" in data and not data["language"]:  # removed in the CRM: "" reads none
            fields["language"] = ""
        if cid and fields:
            self.store.project(delivery, [(cid, fields, at_ms)])

    def merged(self, delivery: Any, survivor: str, source: str, tier: Any, at_ms: int) -> None:
        changes: list[tuple[str, Mapping[str, str], int]] = []
        if survivor and tier:
            changes.append((survivor, {"tier": str(tier)}, at_ms))
        if source:
            changes.append((source, {"merged_into": survivor}, at_ms))
        self.store.project(delivery, changes)

    def unmerged(self, delivery: Any, source: str, at_ms: int) -> None:
        if source:
            self.store.unmerge(delivery, source, at_ms)

    def erased(self, cid: str, at_ms: int) -> None:
        if cid:
            self.store.erase_customer(cid, at_ms)
