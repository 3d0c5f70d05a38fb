"""Use cases of devices: fingerprints, the risk of shared ones, trusted devices."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.identity.common import iso, new_event
from services.identity.config import IdentityConfig
from services.identity.domain import fingerprint as fpr
from services.identity.domain.errors import DeviceNotTrustable, NotFound
from services.identity.domain.policy import TierPolicy
from services.identity.policies import Policies
from services.identity.ports import DeviceStore


class Devices:
    def __init__(
        self,
        store: DeviceStore,
        policies: Policies,
        config: IdentityConfig,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.policies, self.config, self.clock = store, policies, config, clock

    def fingerprint(self, device: Mapping[str, Any]) -> dict[str, Any]:
        components = fpr.normalise(device)
        return {
            "fingerprint": fpr.fingerprint(self.config.fingerprint_key, components),
            "components": components,
        }

    def trusted(self, cid: str, policy: TierPolicy, seen: dict[str, Any] | None) -> bool:
        if seen is None or not fpr.is_authenticator(seen["components"]):
            return False
        if self.store.is_flagged(seen["fingerprint"]):
            return False
        horizon = self.clock() - policy.trusted_device_days * 86400
        return any(
            d["trusted_at"] >= horizon and fpr.same_device(d["components"], seen["components"])
            for d in self.store.devices(cid)
        )

    def ani_fingerprint(self, ani: str) -> str:
        """The calling number alone: the risk key for a voice line, whatever else came with it."""
        return fpr.fingerprint(self.config.fingerprint_key, fpr.normalise({"ani": ani}))

    def see(self, cid: str, device: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not device:
            return None
        seen = self.fingerprint(device)
        keys = {seen["fingerprint"]: seen["components"].get("kind", "")}
        if seen["components"].get("kind") == "voice":
            keys[self.ani_fingerprint(str(device.get("ani")))] = "ani"
        for fp, kind in keys.items():
            count = self.store.see_fingerprint(fp, cid, self.clock())
            if count > self.config.risk_max_customers and self.store.flag(fp):
                self.store.publish(
                    [
                        new_event(
                            "identity.device.flagged", fingerprint=fp, customers=count, kind=kind
                        )
                    ]
                )
        return seen

    def _device_view(self, d: Mapping[str, Any], policy: TierPolicy) -> dict[str, Any]:
        return {
            "device_id": d["device_id"],
            "fingerprint": d["fingerprint"],
            "kind": d["components"].get("kind", ""),
            "trusted_at": iso(d["trusted_at"]),
            "expires_at": iso(d["trusted_at"] + policy.trusted_device_days * 86400),
            "flagged": self.store.is_flagged(d["fingerprint"]),
        }

    def devices(self, cid: str) -> list[dict[str, Any]]:
        profile = self.store.profile(cid)
        # The window shown is the one trust_device answered: the tier it was trusted under,
        # unless the CRM now knows the customer's tier.
        return [
            self._device_view(
                d, self.policies.policy(self.policies.tier_of(cid, d.get("tier"), profile))
            )
            for d in self.store.devices(cid)
        ]

    def trust_device(self, cid: str, vid: str) -> dict[str, Any]:
        v = self.store.verification(vid)
        if v is None or v["customer_id"] != cid:
            raise NotFound("no such verification for this customer")
        if v["status"] != "approved":
            raise DeviceNotTrustable("only the device of an approved verification can be trusted")
        seen = v.get("device")
        if not seen:
            raise DeviceNotTrustable("the verification carried no device")
        if not fpr.is_authenticator(seen["components"]):
            raise DeviceNotTrustable("a phone line (ANI) is never trusted as a device")
        if self.store.is_flagged(seen["fingerprint"]):
            raise DeviceNotTrustable("this device is flagged as shared between customers")
        device = {
            "device_id": "d-" + seen["fingerprint"][:24],
            "fingerprint": seen["fingerprint"],
            "components": seen["components"],
            "trusted_at": self.clock(),
            "verification_id": vid,
            "tier": v["tier"],
        }
        event = new_event("identity.device.trusted", customer_id=cid, device_id=device["device_id"])
        self.store.save_device(cid, device, [event])
        return self._device_view(device, self.policies.policy(v["tier"]))

    def untrust_device(self, cid: str, device_id: str) -> None:
        # Checked first so that deleting an unknown device publishes nothing (as remove_factor).
        if all(d["device_id"] != device_id for d in self.store.devices(cid)):
            raise NotFound("no such device")
        event = new_event("identity.device.untrusted", customer_id=cid, device_id=device_id)
        if not self.store.delete_device(cid, device_id, [event]):
            raise NotFound("no such device")
