"""Identity use cases. Ports come in as arguments; the rules live in ``domain``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.identity.config import IdentityConfig
from services.identity.delivery_guard import DeliveryGuard
from services.identity.domain import fingerprint as fpr
from services.identity.domain.errors import (
    CodeRejected,
    CustomerLocked,
    DeliveryUnavailable,
    DeviceNotTrustable,
    DocumentsUnavailable,
    DocumentSuperseded,
    EnrollmentInvalid,
    FactorNotAllowed,
    FactorNotChallengeable,
    FactorNotReady,
    IdentityError,
    InvalidSignature,
    NotFound,
    PolicyInvalid,
    PolicyProtected,
    StepTaken,
    Throttled,
    VerificationClosed,
)
from services.identity.domain.factors import Attempt, FactorRecord, FactorRegistry
from services.identity.domain.policy import (
    COMMON_CHANNELS,
    DEFAULT_POLICY,
    DEFAULT_TIER,
    OTHER,
    TIER_NAME,
    Decision,
    TierPolicy,
    evaluate,
    parse_policy,
)
from services.identity.domain.session import SessionClaims, reuse_decision
from services.identity.ports import AnswerHasher, DeliveryProvider, DocumentVerifier, Store, Tokens
from services.identity.resubmission import CodeTurn, CodeTurns
from shared.events import Event

SOURCE = "identity"
CALLBACK_MAX_SKEW = 300


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass
class Result:
    """A use case's answer: the body, and the HTTP status it stands for."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class _Env:
    """The ``FactorEnv`` plugins get: the service's ports, nothing more."""

    def __init__(self, service: IdentityService) -> None:
        self.s = service

    def now(self) -> float:
        return self.s.clock()

    def secret_key(self, purpose: str) -> bytes:
        return {"otp": self.s.config.otp_key, "kba": self.s.config.kba_pepper}.get(
            purpose, hmac.new(self.s.config.otp_key, purpose.encode(), hashlib.sha256).digest()
        )

    def setting(self, name: str, default: Any = None) -> Any:
        return getattr(self.s.config, name, default)

    def accept_step(self, factor_id: str, step: int) -> bool:
        return self.s.store.accept_step(factor_id, step)

    def store_code(self, verification_id: str, factor: str, record: Any, ttl: int) -> None:
        self.s.store.store_code(verification_id, factor, record, ttl)

    def peek_code(self, verification_id: str, factor: str) -> Any:
        return self.s.store.peek_code(verification_id, factor)

    def consume_code(self, verification_id: str, factor: str, digest: str) -> bool:
        used = self.s.store.consume_code(verification_id, factor, digest)
        if used and self.s.guard is not None:  # a delivered code converted (fraud guard)
            self.s.guard.converted(verification_id, factor)
        return used

    def throttle(self, destination: str) -> None:
        c = self.s.config
        key = hmac.new(c.otp_key, destination.encode(), hashlib.sha256).hexdigest()[:32]
        wait = self.s.store.throttle(key, c.throttle_window, c.throttle_max, c.throttle_cooldown)
        if wait > 0:
            raise Throttled(wait, "too many codes were sent to this destination; wait")

    def deliver(self, channel: str, destination: str, message: str, meta: Mapping[str, Any]) -> str:
        try:
            return self.s.delivery(channel).send(channel, destination, message, meta)
        except Exception as exc:  # noqa: BLE001 - any provider failure is one answer to the client
            retry = getattr(exc, "retry_after", None)  # the provider's breaker is open
            raise DeliveryUnavailable(
                "the code could not be sent; try again shortly", retry_after=retry
            ) from exc

    def qr_png_base64(self, text: str) -> str:
        return self.s.qr(text) if self.s.qr else ""

    def submit_document(self, verification_id: str, document: Mapping[str, Any]) -> str:
        if self.s.documents is None:
            raise FactorNotChallengeable("no document verifier is configured")
        try:
            reference = self.s.documents.submit(verification_id, document)
        except IdentityError:
            raise
        except Exception as exc:  # noqa: BLE001 - a verifier's failure is one answer: retry later
            raise DocumentsUnavailable(
                "the document could not be submitted; try again shortly",
                retry_after=getattr(exc, "retry_after", None),  # the verifier's breaker is open
            ) from exc
        self.s.store.put_ref("doc", reference, verification_id, 86400)
        return reference

    def hash_answer(self, answer: str) -> str:
        return self.s.answers.hash(answer)

    def verify_answer(self, answer: str, stored: str) -> tuple[bool, str | None]:
        return self.s.answers.verify(answer, stored)

    def update_factor_data(
        self, customer_id: str, record: FactorRecord, data: Mapping[str, Any]
    ) -> bool:
        return self.s.store.replace_factor_data(customer_id, asdict(record), data)


class _DeferredSteps(_Env):
    """The env of one check: a TOTP time step the plugin accepts is only noted, so that
    the service can claim it in the same round trip as the approval it leads to (a
    round trip is about 7% of a TOTP flow's cost). The claim is made before anything
    counts the check as a success: a step taken meanwhile fails the check as before."""

    def __init__(self, service: IdentityService) -> None:
        super().__init__(service)
        self.claims: list[tuple[str, int]] = []

    def accept_step(self, factor_id: str, step: int) -> bool:
        self.claims.append((factor_id, step))
        return True


class IdentityService:
    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        registry: FactorRegistry,
        config: IdentityConfig,
        *,
        delivery: Callable[[str], DeliveryProvider],
        answers: AnswerHasher,
        documents: DocumentVerifier | None = None,
        qr: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
        guard: DeliveryGuard | None = None,
        turns: CodeTurns | None = None,
    ) -> None:
        self.store, self.tokens, self.registry, self.config = store, tokens, registry, config
        self.answers, self.turns = answers, turns
        self.delivery, self.documents, self.qr, self.clock = delivery, documents, qr, clock
        self.guard = guard  # the delivery fraud guard (delivery_guard.py)
        self.env = _Env(self)
        self._policies: dict[str, TierPolicy] = {}

    @property
    def possession(self) -> frozenset[str]:
        """Factor types of category possession, plugins included (read per use: a plugin
        registered after start-up counts too)."""
        return self.registry.possession_types()

    def _event(self, type_: str, **data: Any) -> Event:
        return Event.new(type_, data, source=SOURCE)

    # == policies =============================================================
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
        event = self._event("identity.policy.changed", tier=tier, action="put", changed_by=who)
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
        event = self._event("identity.policy.changed", tier=tier, action="delete", changed_by=who)
        self.store.save_policy(tier, None, audit, [event])

    def tier_of(self, cid: str, hint: str | None, profile: Mapping[str, str] | None = None) -> str:
        projected = (self.store.profile(cid) if profile is None else profile).get("tier")
        for tier in (projected, hint):
            if tier and TIER_NAME.match(tier):
                return tier
        return DEFAULT_TIER

    # == factors ==============================================================
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
                self._event(
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
        event = self._event(
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
        event = self._event(
            "identity.factor.removed", customer_id=cid, factor_id=fid, type=raw["type"]
        )
        self.store.delete_factor(cid, fid, [event])

    # == devices ==============================================================
    def fingerprint(self, device: Mapping[str, Any]) -> dict[str, Any]:
        components = fpr.normalise(device)
        return {
            "fingerprint": fpr.fingerprint(self.config.fingerprint_key, components),
            "components": components,
        }

    def _trusted_device(self, cid: str, policy: TierPolicy, seen: dict[str, Any] | None) -> bool:
        if seen is None or not fpr.is_authenticator(seen["components"]):
            return False
        if self.store.is_flagged(seen["fingerprint"]):
            return False
        horizon = self.clock() - policy.trusted_device_days * 86400
        return any(
            d["trusted_at"] >= horizon and fpr.same_device(d["components"], seen["components"])
            for d in self.store.devices(cid)
        )

    def _ani_fingerprint(self, ani: str) -> str:
        """The calling number alone: the risk key for a voice line, whatever else came with it."""
        return fpr.fingerprint(self.config.fingerprint_key, fpr.normalise({"ani": ani}))

    def _see_device(self, cid: str, device: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not device:
            return None
        seen = self.fingerprint(device)
        keys = {seen["fingerprint"]: seen["components"].get("kind", "")}
        if seen["components"].get("kind") == "voice":
            keys[self._ani_fingerprint(str(device.get("ani")))] = "ani"
        for fp, kind in keys.items():
            count = self.store.see_fingerprint(fp, cid, self.clock())
            if count > self.config.risk_max_customers and self.store.flag(fp):
                self.store.publish(
                    [
                        self._event(
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
            self._device_view(d, self.policy(self.tier_of(cid, d.get("tier"), profile)))
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
        event = self._event(
            "identity.device.trusted", customer_id=cid, device_id=device["device_id"]
        )
        self.store.save_device(cid, device, [event])
        return self._device_view(device, self.policy(v["tier"]))

    def untrust_device(self, cid: str, device_id: str) -> None:
        # Checked first so that deleting an unknown device publishes nothing (as remove_factor).
        if all(d["device_id"] != device_id for d in self.store.devices(cid)):
            raise NotFound("no such device")
        event = self._event("identity.device.untrusted", customer_id=cid, device_id=device_id)
        if not self.store.delete_device(cid, device_id, [event]):
            raise NotFound("no such device")

    # == verifications ========================================================
    def _reusable(
        self,
        cid: str,
        policy: TierPolicy,
        channel: str,
        token: str | None,
        trusted: bool,
        sids: list[str],
        seen: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any] | None, Decision | None, bool]:
        """(session, what it is worth here, an active session existed)."""
        candidates: list[dict[str, Any]] = []
        if token:
            claims = self.tokens.verify(token)
            if claims and claims.get("sub") == cid and _bound_to(claims, seen):
                session = self.store.session(str(claims["sid"]))
                if session and session["customer_id"] == cid:
                    candidates.append(session)
        if not candidates:
            candidates = self.store.sessions_by_id(cid, sids)
            if not trusted:  # without a token only a trusted device may pick a session up
                return None, None, bool(candidates)
        best: tuple[dict[str, Any] | None, Decision | None] = (None, None)
        for session in sorted(candidates, key=lambda s: -len(s["amr"])):
            decision = reuse_decision(
                policy, channel, tuple(session["amr"]), session["chn"], self.possession
            )
            if decision is None:
                continue
            if decision.approved:
                return session, decision, True
            if best[1] is None or len(decision.counted) > len(best[1].counted):
                best = (session, decision)
        return best[0], best[1], bool(candidates)

    def start(self, cmd: Mapping[str, Any]) -> Result:
        cid, channel = cmd["customer_id"], cmd["channel"]
        snap = self.store.snapshot(cid)
        tier = self.tier_of(cid, cmd.get("tier"), snap["profile"])
        policy = self.policy(tier, snap["policies"])
        now = self.clock()
        seen = self._see_device(cid, cmd.get("device"))
        trusted = self._trusted_device(cid, policy, seen)
        session, carried, had_session = self._reusable(
            cid, policy, channel, cmd.get("session_token"), trusted, snap["sids"], seen
        )
        vid = self.store.new_id("v", cid)
        started = self._event(
            "identity.verification.started",
            verification_id=vid,
            customer_id=cid,
            channel=channel,
            tier=tier,
        )
        if session is not None and carried is not None and carried.approved:
            return self._reuse(vid, cid, channel, tier, session, seen, started, now)
        satisfied = list(carried.counted) if carried else []
        decision = evaluate(policy, channel, satisfied, trusted, self.possession)
        fields = {
            "customer_id": cid,
            "channel": channel,
            "tier": tier,
            "status": "pending",
            "created_at": now,
            "sid": self.store.new_id("s", cid),
            "device": seen,
            "trusted_device": trusted,
            "challenges": {},
            "reused": False,
        }
        sat = [f for f in decision.counted if f != "trusted_device"]
        # Counted now, not when it ends: a verification the customer gives up on stays in
        # ``requested`` and lowers the completion rate.
        counters = {"asked_again" if had_session else "fresh": 1, f"requested:{tier}:{channel}": 1}
        self.store.create_verification(vid, fields, sat, [started], counters)
        if decision.approved:  # a trusted device alone may satisfy a one-factor tier
            return self._approve(vid, {**fields, "satisfied": sat}, policy, decision, status=201)
        return Result(self._pending_body(vid, fields, policy, decision, snap["factors"]), 201)

    def _reuse(
        self,
        vid: str,
        cid: str,
        channel: str,
        tier: str,
        session: dict[str, Any],
        seen: dict[str, Any] | None,
        started: Event,
        now: float,
    ) -> Result:
        claims = SessionClaims(
            iss=self.config.issuer,
            sub=cid,
            sid=session["sid"],
            iat=int(now),
            exp=int(session["exp"]),
            amr=tuple(session["amr"]),
            tier=session["tier"],
            chn=session["chn"],
            fingerprint=(seen or {}).get("fingerprint", ""),
        )
        token = self.tokens.sign(claims.to_jwt())
        approved = self._event(
            "identity.verification.approved",
            verification_id=vid,
            customer_id=cid,
            channel=channel,
            tier=tier,
            factors=list(session["amr"]),
            sid=session["sid"],
            reused=True,
        )
        fields = {
            "customer_id": cid,
            "channel": channel,
            "tier": tier,
            "status": "approved",
            "created_at": now,
            "sid": session["sid"],
            "device": seen,
            "trusted_device": False,
            "challenges": {},
            "reused": True,
            "expires_at": session["exp"],
        }
        key = f"{tier}:{channel}"
        counters = {"reused": 1, f"approved:{key}": 1, f"started:{key}": 1, f"requested:{key}": 1}
        self.store.create_verification(vid, fields, session["amr"], [started, approved], counters)
        return Result(
            {
                "verification_id": vid,
                "status": "approved",
                "reused": True,
                "tier": tier,
                "session_token": token,
                "expires_at": iso(session["exp"]),
                "sid": session["sid"],
                "satisfied_factors": list(session["amr"]),
            },
            200,
        )

    def _pending_body(
        self,
        vid: str,
        v: Mapping[str, Any],
        policy: TierPolicy,
        decision: Decision,
        factors: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        req = policy.requirement(v["channel"])
        if factors is None:
            factors = self.store.factors(v["customer_id"])
        enrolled = {f["type"] for f in factors if f["status"] == "active"}
        available = [
            f
            for f in decision.candidates
            if f in self.registry and (f in enrolled or not self.registry.get(f).enrollable)
        ]
        return {
            "verification_id": vid,
            "status": v.get("status", "pending"),
            "tier": v["tier"],
            "channel": v["channel"],
            "required": {
                "min_factors": req.min_factors,
                "require_possession": req.require_possession,
            },
            "available_factors": available,
            "satisfied_factors": list(decision.counted),
        }

    def _load(self, vid: str) -> tuple[dict[str, Any], TierPolicy]:
        v = self.store.verification(vid)
        if v is None:
            raise NotFound("no such verification (it may have expired)")
        return v, self.policy(v["tier"], v.pop("_policies", None))

    def _decide(self, v: Mapping[str, Any], policy: TierPolicy) -> Decision:
        return evaluate(policy, v["channel"], v["satisfied"], v["trusted_device"], self.possession)

    def _approve(
        self,
        vid: str,
        v: dict[str, Any],
        policy: TierPolicy,
        decision: Decision,
        status: int = 200,
        settle: str | None = None,
        claim: tuple[str, int] | None = None,
    ) -> Result:
        """Issue the session; ``settle`` names a factor whose successful attempt is settled
        in the same round trip, ``claim`` a TOTP (factor id, step) accepted in it first
        (``StepTaken`` when it was accepted before: nothing is written)."""
        now = self.clock()
        cid, sid = v["customer_id"], v["sid"]
        exp = int(now) + policy.session_ttl_seconds
        seen = v.get("device") or {}
        session = {
            "sid": sid,
            "customer_id": cid,
            "tier": v["tier"],
            "chn": v["channel"],
            "amr": list(decision.counted),
            "iat": int(now),
            "exp": exp,
            "fingerprint": seen.get("fingerprint", ""),
            # A session verified on a phone line belongs to that line (see verification_status).
            "ani_fp": self._ani_fingerprint(seen["components"]["ani"])
            if seen.get("components", {}).get("ani")
            else "",
            "verification_id": vid,
        }
        # Concurrent approvals of one verification all store the session; only the first
        # (decided inside the store's script) publishes the events and counts the KPIs.
        events = [
            self._event(
                "identity.verification.approved",
                verification_id=vid,
                customer_id=cid,
                channel=v["channel"],
                tier=v["tier"],
                factors=list(decision.counted),
                sid=sid,
                reused=False,
            ),
            self._event("identity.session.issued", sid=sid, customer_id=cid),
        ]
        key = f"{v['tier']}:{v['channel']}"
        self.store.commit_approval(
            session,
            policy.session_ttl_seconds,
            vid,
            {"status": "approved", "expires_at": exp},
            events,
            {f"approved:{key}": 1, f"started:{key}": 1},
            (now - v["created_at"]) * 1000,
            settle=None if settle is None else (settle, policy.max_attempts),
            claim=claim,
        )
        claims = SessionClaims(
            iss=self.config.issuer,
            sub=cid,
            sid=sid,
            iat=int(now),
            exp=exp,
            amr=tuple(decision.counted),
            tier=v["tier"],
            chn=v["channel"],
            fingerprint=session["fingerprint"],
        )
        return Result(
            {
                "verification_id": vid,
                "status": "approved",
                "reused": False,
                "tier": v["tier"],
                "satisfied_factors": list(decision.counted),
                "remaining_attempts": max(0, policy.max_attempts - v.get("attempts", 0)),
                "session_token": self.tokens.sign(claims.to_jwt()),
                "expires_at": iso(exp),
                "sid": sid,
            },
            status,
        )

    def _open(self, vid: str, lock_checked_later: bool = False) -> tuple[dict, TierPolicy]:
        v, policy = self._load(vid)
        retry, held = (0, False) if lock_checked_later else self.store.lock_state(v["customer_id"])
        if retry or held or v["status"] == "locked":
            if not (retry or held):
                retry, held = self.store.lock_state(v["customer_id"])
            raise CustomerLocked(retry or 1, held)
        if v["status"] != "pending":
            raise VerificationClosed(f"the verification is {v['status']}")
        return v, policy

    def _factor_for(self, v: Mapping[str, Any], policy: TierPolicy, factor: str) -> Any:
        plugin = self.registry.get(factor)
        if factor not in policy.requirement(v["channel"]).allowed_factors:
            raise FactorNotAllowed(f"{factor} does not count for this tier on {v['channel']}")
        if factor == "trusted_device":
            raise FactorNotAllowed("a trusted device is recognised from the request's device")
        return plugin

    def _records(
        self, cid: str, factor: str, factors: list[dict[str, Any]] | None = None
    ) -> list[FactorRecord]:
        rows = self.store.factors(cid) if factors is None else factors
        return [FactorRecord(**r) for r in rows if r["type"] == factor and r["status"] == "active"]

    def challenge(self, vid: str, params: Mapping[str, Any], client: str = "") -> dict[str, Any]:
        v, policy = self._open(vid)
        factor = params["factor"]
        plugin = self._factor_for(v, policy, factor)
        records = self._records(v["customer_id"], factor)
        if plugin.enrollable and not records:
            raise FactorNotChallengeable(f"no active {factor} factor is enrolled")
        attempt = Attempt(vid, v["customer_id"], v["channel"], params)
        env = self.guard.env(self.env, attempt, plugin, client) if self.guard else self.env
        public, state = plugin.challenge(env, attempt, records)
        if not self.store.set_challenge(vid, factor, state):
            raise NotFound("no such verification")  # expired meanwhile
        if isinstance(public.get("expires_at"), int | float):
            public["expires_at"] = iso(public["expires_at"])
        return public

    def check(self, vid: str, params: Mapping[str, Any]) -> Result:
        with CodeTurn(self, vid, params) as turn:  # a resubmitted code is not counted
            turn.result = self._check(vid, params, turn)
        return turn.result

    def _check(self, vid: str, params: Mapping[str, Any], turn: CodeTurn) -> Result:
        v, policy = self._open(vid, lock_checked_later=True)  # the reservation checks the lock
        cid, factor = v["customer_id"], params["factor"]
        plugin = self._factor_for(v, policy, factor)
        attempt = Attempt(vid, cid, v["channel"], params, v["challenges"].get(factor, {}))
        waiting = plugin.not_ready(attempt)
        if waiting:
            retry, held = self.store.lock_state(cid)  # locked stays 423, whatever the factor
            if retry or held:
                raise CustomerLocked(retry or 1, held)
            raise FactorNotReady(waiting)
        reserved = turn.reserve(cid, policy)
        if isinstance(reserved, Result):
            return reserved  # the same code's check answered it
        (granted, remaining, retry, held), factors = reserved
        if not granted:
            self._lock(vid, v, policy)
            raise CustomerLocked(retry, held)
        ok = combined = False
        predicted = sorted({*v["satisfied"], factor})
        decision = self._decide({**v, "satisfied": predicted}, policy)
        env = _DeferredSteps(self)
        try:
            ok = bool(plugin.check(env, attempt, self._records(cid, factor, factors)))
            # Approval only grows with the satisfied set, so factors satisfied meanwhile
            # cannot undo it: claim the step, settle and approve in one round trip.
            combined = (
                ok
                and decision.approved
                and len(env.claims) == 1
                and self.store.claims_with_approval(cid, vid, v["sid"], env.claims[0][0])
            )
            if ok and not combined:  # claimed now, one by one, as the plugin asked
                ok = all(self.store.accept_step(fid, step) for fid, step in env.claims)
        finally:
            if not ok:
                locked, remaining = self.store.settle_attempt(
                    vid, cid, False, policy.max_attempts, policy.lockout_seconds
                )
        if ok and decision.approved:
            approving = {**v, "satisfied": predicted}
            try:
                return self._approve(
                    vid,
                    approving,
                    policy,
                    decision,
                    settle=factor,
                    claim=env.claims[0] if combined else None,
                )
            except StepTaken:  # a concurrent check used this code's step first
                ok = False
                locked, remaining = self.store.settle_attempt(
                    vid, cid, False, policy.max_attempts, policy.lockout_seconds
                )
        if ok:
            remaining, v["satisfied"] = self.store.settle_success(
                vid, cid, factor, policy.max_attempts, policy.lockout_seconds
            )
            decision = self._decide(v, policy)
            if decision.approved:
                return self._approve(vid, v, policy, decision)
        else:
            decision = self._decide(v, policy)
            self.store.publish(
                [
                    self._event(
                        "identity.verification.failed",
                        verification_id=vid,
                        customer_id=cid,
                        channel=v["channel"],
                        reason="check_failed",
                        factor=factor,
                        remaining_attempts=remaining,
                    )
                ]
            )
            if locked:
                self._lock(vid, v, policy)
                return Result(
                    {
                        "verification_id": vid,
                        "status": "locked",
                        "satisfied_factors": list(decision.counted),
                        "remaining_attempts": 0,
                    }
                )
        turn.ok = ok
        return Result(
            {
                "verification_id": vid,
                "status": "pending",
                "satisfied_factors": list(decision.counted),
                "remaining_attempts": remaining,
                "available_factors": self._pending_body(vid, v, policy, decision, factors)[
                    "available_factors"
                ],
            }
        )

    def _lock(self, vid: str, v: Mapping[str, Any], policy: TierPolicy) -> None:
        if self.store.claim_once(f"locked:{vid}", 3600):
            event = self._event(
                "identity.verification.locked",
                verification_id=vid,
                customer_id=v["customer_id"],
                channel=v["channel"],
                reason="too_many_attempts",
            )
            self.store.update_verification(vid, {"status": "locked"}, events=[event])
            self.store.record_outcome(f"locked:{v['tier']}:{v['channel']}", None)
            self.store.count(**{f"started:{v['tier']}:{v['channel']}": 1})

    def unlock_customer(self, cid: str, who: str) -> None:
        """An administrator lifts the customer's lock, failure count and streak (idempotent).

        The attempts of each verification stay: a locked verification stays locked, and
        the customer starts a new one.
        """
        event = self._event("identity.customer.unlocked", customer_id=cid, unlocked_by=who)
        self.store.unlock(cid, [event])

    def get_verification(self, vid: str) -> dict[str, Any]:
        v, policy = self._load(vid)
        decision = self._decide(v, policy)
        body = self._pending_body(vid, v, policy, decision)
        body["remaining_attempts"] = max(0, min(policy.max_attempts, 100) - v["attempts"])
        body["reused"] = bool(v.get("reused"))
        if v["status"] == "approved":
            body["satisfied_factors"] = (
                v["satisfied"] if v.get("reused") else list(decision.counted)
            )
            body["available_factors"] = []
            body["sid"] = v["sid"]
            body["expires_at"] = iso(v["expires_at"])
        return body

    def document_result(self, raw: bytes, timestamp: str, signature: str) -> None:
        mac = hmac.new(self.config.document_secret, timestamp.encode() + b"." + raw, hashlib.sha256)
        expected = "sha256=" + mac.hexdigest()
        if not hmac.compare_digest(expected, signature or ""):
            raise InvalidSignature("the callback signature is not valid")
        try:
            skew = abs(self.clock() - int(timestamp))
            body = json.loads(raw)
            reference, result = str(body["reference"]), str(body["result"])
        except (ValueError, KeyError, TypeError):
            raise InvalidSignature("the callback is malformed") from None
        if skew > CALLBACK_MAX_SKEW or result not in ("approved", "rejected"):
            raise InvalidSignature("the callback is stale or malformed")
        vid = self.store.get_ref("doc", reference)
        v = self.store.verification(vid) if vid else None
        if vid is None or v is None:
            raise NotFound("no verification waits for this document")
        current = v["challenges"].get("document", {})
        if current.get("reference") != reference:
            # A late result for an earlier submission must not overwrite the newer one;
            # a 4xx tells the verifier it was not applied and is not worth retrying.
            raise DocumentSuperseded("this result is for an earlier document submission")
        # Only onto that submission: a new one made meanwhile is not overwritten.
        if not self.store.set_challenge(
            vid, "document", {"result": result}, merge=True, only_if_reference=reference
        ):
            raise DocumentSuperseded("this result is for an earlier document submission")

    # == sessions =============================================================
    def _active(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        claims = self.tokens.verify(token)
        if claims is None:
            return None
        session = self.store.session(str(claims["sid"]))
        if session is None or session["customer_id"] != claims["sub"]:
            return None
        return claims, session

    def introspect(self, token: str, device: Mapping[str, Any] | None) -> dict[str, Any]:
        found = self._active(token)
        if found is None:
            return {"active": False}
        claims, session = found
        bound = (claims.get("cnf") or {}).get("fp")
        if device and bound and not _bound_to(claims, self.fingerprint(device)):
            return {"active": False}
        # Without a device the token alone answers (an IVR or a desk has no browser to
        # show), and ``cnf`` says it is bound: proof of possession only with its device.
        return {
            **({"cnf": {"fp": bound}} if bound else {}),
            "active": True,
            "sub": claims["sub"],
            "sid": claims["sid"],
            "acr": claims["acr"],
            "amr": claims["amr"],
            "tier": claims["tier"],
            "exp": claims["exp"],
            "chn": claims["chn"],
            "iss": claims["iss"],
            "iat": claims["iat"],
            "token_type": "sb-session+jwt",
        }

    def _revoked(self, session: dict[str, Any]) -> list[Event]:
        return [
            self._event(
                "identity.session.revoked", sid=session["sid"], customer_id=session["customer_id"]
            )
        ]

    def revoke_token(self, token: str) -> None:
        claims = self.tokens.verify(token)
        if claims is not None:
            self.store.revoke_session(str(claims["sid"]), self._revoked)

    def revoke_sid(self, sid: str) -> None:
        if self.store.revoke_session(sid, self._revoked) is None:
            raise NotFound("no active session with this id")

    def revoke_all(self, cid: str) -> int:
        return sum(
            self.store.revoke_session(s["sid"], self._revoked) is not None
            for s in self.store.sessions_of(cid)
        )

    def verification_status(self, cid: str, channel: str, ani: str | None) -> dict[str, Any]:
        not_verified = {
            "verified": False,
            "level": "0",
            "factors": [],
            "expires_at": None,
            "sid": None,
        }
        if ani and self.store.is_flagged(self._ani_fingerprint(ani)):
            return not_verified  # a calling number shared by many customers proves nothing
        projected, sessions, policies = self.store.status_snapshot(cid)
        best = None
        caller = self._ani_fingerprint(ani) if ani else ""
        for session in sessions:
            if caller and session.get("ani_fp") and session["ani_fp"] != caller:
                continue  # verified on another phone line: not this caller
            # The CRM's tier when known, else the tier the session was verified under.
            policy = self.policy(projected or session["tier"], policies)
            decision = reuse_decision(
                policy, channel, tuple(session["amr"]), session["chn"], self.possession
            )
            if (
                decision is not None
                and decision.approved
                and (best is None or session["exp"] > best[0]["exp"])
            ):
                best = (session, decision)
        if best is None:
            return not_verified
        session, decision = best
        self.store.count_status_reuse(session["sid"], channel, int(session["exp"] - self.clock()))
        return {
            "verified": True,
            "level": decision.acr,
            "factors": list(session["amr"]),
            "expires_at": iso(session["exp"]),
            "sid": session["sid"],
        }

    # == KPIs, export, erasure =================================================
    def stats(self) -> dict[str, Any]:
        counters, durations = self.store.stats()
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
        locked_for, held = self.store.lock_state(cid)
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
            "factors": self.list_factors(cid),
            "devices": [
                {**view, "components": {k: v for k, v in d["components"].items()}}
                for d, view in zip(self.store.devices(cid), self.devices(cid), strict=True)
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
            "locked_for_seconds": locked_for,
            "locked_until_unlocked": held,
        }


def _bound_to(claims: Mapping[str, Any], seen: Mapping[str, Any] | None) -> bool:
    """Is the token presented from the device it is bound to (always, when unbound)?

    A start reuses a bound token only then, so every token minted from it carries the same
    ``cnf``: without a device it would mint an unbound one, usable anywhere (laundering).
    Introspection asks only when a device comes with the token (see ``introspect``)."""
    bound = (claims.get("cnf") or {}).get("fp")
    return not bound or (seen is not None and seen["fingerprint"] == bound)
