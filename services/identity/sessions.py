"""Use cases of sessions: reuse, introspection, revocation, the verification status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.identity.common import iso, new_event
from services.identity.devices import Devices
from services.identity.domain.errors import NotFound
from services.identity.domain.policy import Decision, TierPolicy
from services.identity.domain.session import reuse_decision
from services.identity.policies import Policies
from services.identity.ports import SessionStore, Tokens
from shared.events import Event


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        tokens: Tokens,
        policies: Policies,
        devices: Devices,
        clock: Callable[[], float],
    ) -> None:
        self.store, self.tokens, self.policies, self.devices = store, tokens, policies, devices
        self.clock = clock

    def jwks(self) -> dict[str, Any]:
        """The public keys session tokens are signed with."""
        return self.tokens.jwks()

    def reusable(
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
                policy, channel, tuple(session["amr"]), session["chn"], self.policies.possession
            )
            if decision is None:
                continue
            if decision.approved:
                return session, decision, True
            if best[1] is None or len(decision.counted) > len(best[1].counted):
                best = (session, decision)
        return best[0], best[1], bool(candidates)

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
        if device and bound and not _bound_to(claims, self.devices.fingerprint(device)):
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
            new_event(
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
        if ani and self.store.is_flagged(self.devices.ani_fingerprint(ani)):
            return not_verified  # a calling number shared by many customers proves nothing
        snap = self.store.status_snapshot(cid)
        projected, sessions, policies = snap.tier, snap.sessions, snap.policies
        best = None
        caller = self.devices.ani_fingerprint(ani) if ani else ""
        for session in sessions:
            if caller and session.get("ani_fp") and session["ani_fp"] != caller:
                continue  # verified on another phone line: not this caller
            # The CRM's tier when known, else the tier the session was verified under.
            policy = self.policies.policy(projected or session["tier"], policies)
            decision = reuse_decision(
                policy, channel, tuple(session["amr"]), session["chn"], self.policies.possession
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


def _bound_to(claims: Mapping[str, Any], seen: Mapping[str, Any] | None) -> bool:
    """Is the token presented from the device it is bound to (always, when unbound)?

    A start reuses a bound token only then, so every token minted from it carries the same
    ``cnf``: without a device it would mint an unbound one, usable anywhere (laundering).
    Introspection asks only when a device comes with the token (see ``introspect``)."""
    bound = (claims.get("cnf") or {}).get("fp")
    return not bound or (seen is not None and seen["fingerprint"] == bound)
