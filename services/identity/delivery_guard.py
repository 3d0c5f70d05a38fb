"""Use cases of the delivery fraud guard (API.md B, "Fraud guard for delivered codes").

Every code the identity service sends goes through ``DeliveryGuard`` before the provider
is called: the country and line type are screened (403 ``delivery-not-allowed``), then one
script checks and counts the prefix block, the customer's distinct destinations and the
hourly sends per API client, customer and prefix (403, or 429 with ``Retry-After``). Only a
send that passes is counted. A prefix whose codes are sent but not entered is blocked
automatically (``identity.delivery.prefix_blocked``, audited, counted in metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.identity.domain.delivery_policy import (
    CHANNELS,
    DEFAULT_DELIVERY_POLICY,
    DeliveryPolicy,
    Destination,
    Refusal,
    caps,
    decide,
    parse_delivery_policy,
    screen,
    should_block,
)
from services.identity.domain.errors import DeliveryNotAllowed, DeliveryThrottled, NotFound
from services.identity.domain.factors import Attempt, FactorEnv, FactorRecord
from services.identity.ports import DeliveryGuardStore, Destinations, GuardStats
from shared.events import Event

SOURCE = "identity"
AUDIT_TIER = "@delivery"  # the audit entries' ``tier``: no tier can be named so
POLICY_CACHE_SECONDS = 2.0


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class DeliveryGuard:
    def __init__(
        self,
        store: DeliveryGuardStore,
        destinations: Destinations,
        *,
        otp_lifetime: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.destinations, self.clock = store, destinations, clock
        self.otp_lifetime = otp_lifetime
        self._cached: tuple[float, DeliveryPolicy] | None = None

    # -- the policy (admin) ---------------------------------------------------------------
    def policy(self) -> DeliveryPolicy:
        """The stored policy, else the default; read again after POLICY_CACHE_SECONDS (a PUT
        applies at once in its own process, within that delay in the others)."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < POLICY_CACHE_SECONDS:
            return self._cached[1]
        raw = self.store.policy_raw()
        policy = DEFAULT_DELIVERY_POLICY if raw is None else parse_delivery_policy(raw)
        self._cached = (now, policy)
        return policy

    def view(self) -> dict[str, Any]:
        return {**self.policy().to_dict(), "blocks": self.blocks()}

    def put(self, data: Mapping[str, Any], who: str) -> dict[str, Any]:
        policy = parse_delivery_policy(data)
        after = policy.to_dict()
        before = self.store.policy_raw()
        audit = {
            "who": who,
            "at": _iso(self.clock()),
            "tier": AUDIT_TIER,
            "subject": "delivery-policy",
            "action": "put",
            "before": before or DEFAULT_DELIVERY_POLICY.to_dict(),
            "after": after,
        }
        event = Event.new("identity.delivery.policy_changed", {"changed_by": who}, source=SOURCE)
        self.store.save_policy(after, audit, [event])
        self._cached = (time.monotonic(), policy)
        return self.view()

    def blocks(self) -> list[dict[str, Any]]:
        return [
            {"prefix": block.prefix, "until": _iso(block.until)}
            for block in self.store.blocks(self.clock())
        ]

    def stats(self) -> GuardStats:
        return self.store.stats()

    def lift(self, prefix: str, who: str) -> None:
        if not self.store.unblock(prefix):
            raise NotFound("no block on this prefix")
        self.store.audit(
            {
                "who": who,
                "at": _iso(self.clock()),
                "tier": AUDIT_TIER,
                "subject": "delivery-block",
                "action": "delete",
                "before": {"prefix": prefix},
                "after": None,
            }
        )

    # -- sends ----------------------------------------------------------------------------
    def _facts(self, policy: DeliveryPolicy, channel: str, address: str) -> Destination:
        return self.destinations.describe(channel, address, policy.prefix_digits)

    def _refuse(self, refusal: Refusal) -> None:
        self.store.refused(refusal.reason)
        if refusal.status == 429:
            raise DeliveryThrottled(refusal.reason, refusal.retry_after or 1, refusal.message)
        raise DeliveryNotAllowed(refusal.reason, refusal.message, refusal.retry_after)

    def screen(self, channel: str, address: str) -> None:
        """Country and line type: refused before anything else happens."""
        policy = self.policy()
        refusal = screen(policy, self._facts(policy, channel, address))
        if refusal is not None:
            self._refuse(refusal)

    def screen_enrollment(
        self, customer_id: str, plugin: Any, enrollment: Any, factors: Sequence[Mapping[str, Any]]
    ) -> None:
        """An enrolled destination must be one codes may be sent to, and one of at most
        ``max_destinations_per_customer`` (the ones already enrolled count; an address
        enrolled for sms and voice is one destination)."""
        channel = getattr(plugin, "channel", None)
        address = enrollment.data.get("destination")
        if channel not in CHANNELS or not isinstance(address, str):
            return
        policy = self.policy()
        self.screen(channel, address)
        digests = {self._facts(policy, channel, address).digest}
        for record in factors:
            other = (record.get("data") or {}).get("destination")
            if isinstance(other, str):
                kind = "email" if "@" in other else "sms"
                digests.add(self._facts(policy, kind, other).digest)
        if len(digests) > policy.max_destinations_per_customer:
            self._refuse(
                Refusal(
                    "too_many_destinations",
                    f"this customer has {policy.max_destinations_per_customer} destinations "
                    "enrolled already; remove one first",
                )
            )

    def admit(
        self, channel: str, address: str, *, customer_id: str, client: str, marker: str
    ) -> None:
        """Check and count one send (raises ``DeliveryNotAllowed`` / ``DeliveryThrottled``)."""
        policy = self.policy()
        dest = self._facts(policy, channel, address)
        refusal = screen(policy, dest)
        if refusal is not None:
            self._refuse(refusal)
        now = self.clock()
        rule = policy.auto_block
        admission = self.store.admit(
            now=now,
            digest=dest.digest,
            customer=self.destinations.digest("customer:" + customer_id),
            client=client or "unknown",
            prefix=dest.prefix,
            caps=caps(policy, dest),
            window=rule.window_seconds,
            grace=rule.grace_seconds,
            marker=marker,
            marker_ttl=self.otp_lifetime + 60,
        )
        verdict = decide(policy, dest, admission.usage)
        if not admission.admitted:
            # decide() refuses exactly what the script did not count; a refusal is certain.
            self._refuse(
                verdict
                or Refusal("client_rate", "too many codes sent", 429, admission.usage.window_left)
            )
        if dest.prefix and should_block(policy, admission.sends, admission.converted):
            self._auto_block(policy, dest.prefix, admission.sends, admission.converted, now)

    def _auto_block(
        self, policy: DeliveryPolicy, prefix: str, sends: int, converted: int, now: float
    ) -> None:
        until = now + policy.auto_block.block_seconds
        if not self.store.block(prefix, until, now):
            return  # a concurrent send blocked it first, and told
        data = {
            "prefix": prefix,
            "sends": sends,
            "converted": converted,
            "blocked_until": _iso(until),
            "block_seconds": policy.auto_block.block_seconds,
        }
        self.store.audit(
            {
                "who": "fraud-guard",
                "at": _iso(now),
                "tier": AUDIT_TIER,
                "subject": "delivery-block",
                "action": "put",
                "before": None,
                "after": data,
            }
        )
        self.store.publish([Event.new("identity.delivery.prefix_blocked", data, source=SOURCE)])

    def converted(self, verification_id: str, factor: str) -> None:
        self.store.converted(f"{verification_id}:{factor}")

    def env(self, base: FactorEnv, attempt: Attempt, plugin: Any, client: str) -> FactorEnv:
        """The env a plugin's challenge gets: its sends pass the guard first."""
        channel = getattr(plugin, "channel", None)
        return GuardedEnv(
            base, self, attempt, channel if channel in CHANNELS else None, client, plugin.type
        )


class GuardedEnv:
    """A ``FactorEnv`` whose sends pass the delivery guard before anything is counted or
    sent. A built-in OTP factor calls ``throttle`` first: the guard screens there (before
    the per-destination throttle counts) and counts after it; a plugin that sends without
    ``throttle`` is guarded at ``deliver``."""

    def __init__(
        self,
        env: FactorEnv,
        guard: DeliveryGuard,
        attempt: Attempt,
        channel: str | None,
        client: str,
        factor: str,
    ) -> None:
        self._env, self._guard, self._attempt = env, guard, attempt
        self._channel, self._client, self._factor = channel, client, factor
        self._admitted: set[tuple[str, str]] = set()

    def _admit(self, channel: str, destination: str) -> None:
        self._guard.admit(
            channel,
            destination,
            customer_id=self._attempt.customer_id,
            client=self._client,
            marker=f"{self._attempt.verification_id}:{self._factor}",
        )
        self._admitted.add((channel, destination))

    def throttle(self, destination: str) -> None:
        if self._channel is not None:
            self._guard.screen(self._channel, destination)
        self._env.throttle(destination)
        if self._channel is not None:
            self._admit(self._channel, destination)

    def deliver(self, channel: str, destination: str, message: str, meta: Mapping[str, Any]) -> str:
        if (channel, destination) not in self._admitted:
            self._admit(channel, destination)
        return self._env.deliver(channel, destination, message, meta)

    def now(self) -> float:
        return self._env.now()

    def secret_key(self, purpose: str) -> bytes:
        return self._env.secret_key(purpose)

    def setting(self, name: str, default: Any = None) -> Any:
        return self._env.setting(name, default)

    def match_totp(self, secret: str, code: str) -> int | None:
        return self._env.match_totp(secret, code)

    def accept_step(self, factor_id: str, step: int) -> bool:
        return self._env.accept_step(factor_id, step)

    def store_code(self, verification_id: str, factor: str, record: Any, ttl: int) -> None:
        self._env.store_code(verification_id, factor, record, ttl)

    def peek_code(self, verification_id: str, factor: str) -> Any:
        return self._env.peek_code(verification_id, factor)

    def consume_code(self, verification_id: str, factor: str, digest: str) -> bool:
        return self._env.consume_code(verification_id, factor, digest)

    def qr_png_base64(self, text: str) -> str:
        return self._env.qr_png_base64(text)

    def submit_document(self, verification_id: str, document: Mapping[str, Any]) -> str:
        return self._env.submit_document(verification_id, document)

    def hash_answer(self, answer: str) -> str:
        return self._env.hash_answer(answer)

    def verify_answer(self, answer: str, stored: str) -> tuple[bool, str | None]:
        return self._env.verify_answer(answer, stored)

    def update_factor_data(
        self, customer_id: str, record: FactorRecord, data: Mapping[str, Any]
    ) -> bool:
        return self._env.update_factor_data(customer_id, record, data)
