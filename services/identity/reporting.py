"""Use cases of reporting: KPIs, a customer's export and erasure."""

from __future__ import annotations

from typing import Any

from services.identity.common import iso
from services.identity.devices import Devices
from services.identity.domain.policy import COMMON_CHANNELS, DEFAULT_TIER, OTHER
from services.identity.enrollment import Enrollment
from services.identity.ports import ReportingStore


class Reporting:
    def __init__(self, store: ReportingStore, enrollment: Enrollment, devices: Devices) -> None:
        self.store, self.enrollment, self.devices = store, enrollment, devices

    def stats(self) -> dict[str, Any]:
        read = self.store.stats()
        counters, durations = read.counters, read.durations
        reused, by_status = counters.get("reused", 0), counters.get("status_reused", 0)
        asked = counters.get("asked_again", 0)
        # A verified status answer (an IVR that skipped its verification) is a reuse too.
        avoided = reused + by_status
        stored = self.store.list_policies()
        tiers = {*stored, DEFAULT_TIER}
        channels = {*COMMON_CHANNELS, *(c for p in stored.values() for c in p.get("channels", {}))}
        by: dict[tuple[str, str], dict[str, int]] = {}
        for name, value in counters.items():
            parts = name.split(":")
            if len(parts) == 3:
                row = by.setdefault(
                    (
                        parts[1] if parts[1] in tiers else OTHER,
                        parts[2] if parts[2] in channels else OTHER,
                    ),
                    {},
                )
                row[parts[0]] = row.get(parts[0], 0) + value
        ordered = sorted(durations)

        def pct(p: float) -> float | None:
            if not ordered:
                return None
            return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

        return {
            "requests": {
                "reused": reused,
                "status_reused": by_status,
                "asked_again": asked,
                "fresh": counters.get("fresh", 0),
            },
            "repeat_verification_rate": (asked / (asked + avoided)) if asked + avoided else None,
            "reuse_rate": (avoided / (asked + avoided)) if asked + avoided else None,
            "duration_ms": {"p50": pct(50), "p95": pct(95), "samples": len(ordered)},
            "by_tier_channel": [
                {
                    "tier": tier,
                    "channel": channel,
                    "started": c.get("started", 0),
                    "approved": c.get("approved", 0),
                    "locked": c.get("locked", 0),
                    "success_rate": (c.get("approved", 0) / c["started"])
                    if c.get("started")
                    else None,
                    "requested": c.get("requested", 0),
                    # At most 1: verifications started before ``requested`` was counted
                    # (an upgrade) still end as approved.
                    "completion_rate": min(1.0, c.get("approved", 0) / c["requested"])
                    if c.get("requested")
                    else None,
                }
                for (tier, channel), c in sorted(by.items())
            ],
        }

    def export(self, cid: str) -> dict[str, Any]:
        lock = self.store.lock_state(cid)
        verifications = []
        for vid in self.store.verification_ids(cid):
            v = self.store.verification(vid)
            if v:
                verifications.append(
                    {
                        "verification_id": vid,
                        "channel": v["channel"],
                        "tier": v["tier"],
                        "status": v["status"],
                        "created_at": iso(v["created_at"]),
                        "satisfied_factors": v["satisfied"],
                        "reused": bool(v.get("reused")),
                    }
                )
        return {
            "customer_id": cid,
            "profile": self.store.profile(cid) or None,
            "factors": self.enrollment.list_factors(cid),
            "devices": [
                {**view, "components": {k: v for k, v in d["components"].items()}}
                for d, view in zip(self.store.devices(cid), self.devices.devices(cid), strict=True)
            ],
            "sessions": [
                {
                    "sid": s["sid"],
                    "channel": s["chn"],
                    "tier": s["tier"],
                    "factors": s["amr"],
                    "issued_at": iso(s["iat"]),
                    "expires_at": iso(s["exp"]),
                }
                for s in self.store.sessions_of(cid)
            ],
            "verifications": verifications,
            "locked_for_seconds": lock.retry_after,
            "locked_until_unlocked": lock.held,
        }
