"""Use cases of verifications: start, challenge, approve, the document callback.

A check (``checks.py``) is the other half; both share this class's state and helpers.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from services.identity.common import Result, iso, new_event
from services.identity.config import IdentityConfig
from services.identity.delivery_guard import DeliveryGuard
from services.identity.devices import Devices
from services.identity.domain.errors import (
    CustomerLocked,
    DocumentSuperseded,
    FactorNotAllowed,
    FactorNotChallengeable,
    InvalidSignature,
    NotFound,
    VerificationClosed,
)
from services.identity.domain.factors import Attempt, FactorRecord, FactorRegistry
from services.identity.domain.policy import Decision, TierPolicy, evaluate
from services.identity.domain.session import SessionClaims
from services.identity.factor_env import PluginEnv
from services.identity.languages import delivery_language
from services.identity.policies import Policies
from services.identity.ports import (
    AttemptStore,
    FreshStarts,
    LockState,
    Snapshot,
    Tokens,
    VerificationStore,
)
from services.identity.resubmission import CodeTurns
from services.identity.sessions import Sessions
from shared.events import Event

CALLBACK_MAX_SKEW = 300


class Verifications:
    def __init__(
        self,
        store: VerificationStore,
        attempts: AttemptStore,
        tokens: Tokens,
        registry: FactorRegistry,
        config: IdentityConfig,
        *,
        policies: Policies,
        devices: Devices,
        sessions: Sessions,
        env: PluginEnv,
        clock: Callable[[], float],
        documents: Any = None,
        guard: DeliveryGuard | None = None,
        turns: CodeTurns | None = None,
        starts: FreshStarts | None = None,
    ) -> None:
        self.store, self.attempts, self.tokens = store, attempts, tokens
        self.registry, self.config, self.clock = registry, config, clock
        self.policies, self.devices, self.sessions = policies, devices, sessions
        self.env, self.documents, self.guard, self.turns = env, documents, guard, turns
        self.starts = starts

    def check(self, vid: str, params: Mapping[str, Any]) -> Result:
        """Judge a code or answers; approves when the policy is satisfied (checks.py)."""
        from services.identity.checks import check

        return check(self, vid, params)

    def start(self, cmd: Mapping[str, Any]) -> Result:
        cid, channel = cmd["customer_id"], cmd["channel"]
        snap: Snapshot | None = None
        if self.starts is not None and not cmd.get("device") and not cmd.get("session_token"):
            created, snap = self._start_fresh(cid, channel, cmd.get("tier"), cmd.get("language"))
            if created is not None:
                return created
        if snap is None:
            snap = self.store.snapshot(cid)
        tier = self.policies.tier_of(cid, cmd.get("tier"), snap.profile)
        policy = self.policies.policy(tier, snap.policies)
        now = self.clock()
        seen = self.devices.see(cid, cmd.get("device"))
        trusted = self.devices.trusted(cid, policy, seen)
        session, carried, had_session = self.sessions.reusable(
            cid, policy, channel, cmd.get("session_token"), trusted, snap.sids, seen
        )
        vid = self.store.new_id("v", cid)
        started = self._started(vid, cid, channel, tier)
        if session is not None and carried is not None and carried.approved:
            return self._reuse(vid, cid, channel, tier, session, seen, started, now)
        satisfied = list(carried.counted) if carried else []
        decision = evaluate(policy, channel, satisfied, trusted, self.policies.possession)
        fields = self._fields(cid, channel, tier, now, seen, trusted, cmd.get("language"))
        sat = [f for f in decision.counted if f != "trusted_device"]
        # Counted now, not when it ends: a verification the customer gives up on stays in
        # ``requested`` and lowers the completion rate.
        counters = {"asked_again" if had_session else "fresh": 1, f"requested:{tier}:{channel}": 1}
        self.store.create_verification(vid, fields, sat, [started], counters)
        if decision.approved:  # a trusted device alone may satisfy a one-factor tier
            return self._approve(vid, {**fields, "satisfied": sat}, policy, decision, status=201)
        return Result(self._pending_body(vid, fields, policy, decision, snap.factors), 201)

    def _start_fresh(
        self, cid: str, channel: str, hint: str | None, language: str | None = None
    ) -> tuple[Result | None, Snapshot | None]:
        """Without a device or a token nothing is satisfied and no session is reused, so
        the verification is known before the reads but for the tier: the store creates it
        under the tier expected without a projected one, in the round trip of the reads
        (the start's only one). (None, the reads) when the projected tier is another."""
        assert self.starts is not None
        tier = self.policies.tier_of(cid, hint, {})
        now = self.clock()
        vid = self.store.new_id("v", cid)
        fields = self._fields(cid, channel, tier, now, None, False, language)
        counters = {f"requested:{tier}:{channel}": 1}
        started = self._started(vid, cid, channel, tier)
        done = self.starts.start_fresh(vid, fields, [started], counters, ("fresh", "asked_again"))
        if not done.created:
            return None, done.snapshot
        policy = self.policies.policy(tier, done.snapshot.policies)
        decision = evaluate(policy, channel, [], False, self.policies.possession)
        if decision.approved:  # no policy asks for no factor; as ``start`` would, all the same
            return self._approve(vid, {**fields, "satisfied": []}, policy, decision, 201), None
        body = self._pending_body(vid, fields, policy, decision, done.snapshot.factors)
        return Result(body, 201), done.snapshot

    def _started(self, vid: str, cid: str, channel: str, tier: str) -> Event:
        return new_event(
            "identity.verification.started",
            verification_id=vid,
            customer_id=cid,
            channel=channel,
            tier=tier,
        )

    def _fields(
        self,
        cid: str,
        channel: str,
        tier: str,
        now: float,
        seen: dict[str, Any] | None,
        trusted: bool,
        language: str | None = None,
    ) -> dict[str, Any]:
        kept = {"language": language} if language else {}  # for the codes it sends
        return {
            **kept,
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
        approved = new_event(
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
        return v, self.policies.policy(v["tier"], v.pop("_policies", None))

    def _decide(self, v: Mapping[str, Any], policy: TierPolicy) -> Decision:
        return evaluate(
            policy, v["channel"], v["satisfied"], v["trusted_device"], self.policies.possession
        )

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
            "ani_fp": self.devices.ani_fingerprint(seen["components"]["ani"])
            if seen.get("components", {}).get("ani")
            else "",
            "verification_id": vid,
        }
        # Concurrent approvals of one verification all store the session; only the first
        # (decided inside the store's script) publishes the events and counts the KPIs.
        events = [
            new_event(
                "identity.verification.approved",
                verification_id=vid,
                customer_id=cid,
                channel=v["channel"],
                tier=v["tier"],
                factors=list(decision.counted),
                sid=sid,
                reused=False,
            ),
            new_event("identity.session.issued", sid=sid, customer_id=cid),
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
        lock = (
            LockState(0, False)
            if lock_checked_later
            else self.attempts.lock_state(v["customer_id"])
        )
        if lock.locked or v["status"] == "locked":
            if not lock.locked:
                lock = self.attempts.lock_state(v["customer_id"])
            raise CustomerLocked(lock.retry_after or 1, lock.held)
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
        language = ""
        if plugin.needs_challenge:  # it delivers something: in the customer's language
            requested = (params.get("language"), v.get("language"))
            profile = functools.partial(self.policies.store.profile, v["customer_id"])
            language = delivery_language(requested, profile, self.config.default_language)
        attempt = Attempt(vid, v["customer_id"], v["channel"], params, language=language)
        env = self.guard.env(self.env, attempt, plugin, client) if self.guard else self.env
        public, state = plugin.challenge(env, attempt, records)
        if not self.store.set_challenge(vid, factor, state):
            raise NotFound("no such verification")  # expired meanwhile
        if isinstance(public.get("expires_at"), int | float):
            public["expires_at"] = iso(public["expires_at"])
        return public

    def _lock(self, vid: str, v: Mapping[str, Any], policy: TierPolicy) -> None:
        if self.store.claim_once(f"locked:{vid}", 3600):
            event = new_event(
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
        event = new_event("identity.customer.unlocked", customer_id=cid, unlocked_by=who)
        self.attempts.unlock(cid, [event])

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
