"""The session a verification issues, and whether it satisfies another channel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.identity.domain.policy import POSSESSION, Decision, TierPolicy, evaluate

TOKEN_TYPE = "sb-session+jwt"
CLOCK_LEEWAY = 30  # seconds, at most


@dataclass(frozen=True)
class SessionClaims:
    iss: str
    sub: str
    sid: str
    iat: int
    exp: int
    amr: tuple[str, ...]
    tier: str
    chn: str
    fingerprint: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def acr(self) -> str:
        return str(max(1, min(len(self.amr), 3)))

    def to_jwt(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "sid": self.sid,
            "iat": self.iat,
            "exp": self.exp,
            "acr": self.acr,
            "amr": list(self.amr),
            "tier": self.tier,
            "chn": self.chn,
        }
        if self.fingerprint:
            claims["cnf"] = {"fp": self.fingerprint}
        return claims

    @classmethod
    def from_jwt(cls, claims: Mapping[str, Any]) -> SessionClaims:
        cnf = claims.get("cnf") or {}
        return cls(
            iss=str(claims["iss"]),
            sub=str(claims["sub"]),
            sid=str(claims["sid"]),
            iat=int(claims["iat"]),
            exp=int(claims["exp"]),
            amr=tuple(str(a) for a in claims.get("amr", [])),
            tier=str(claims.get("tier", "")),
            chn=str(claims.get("chn", "")),
            fingerprint=str(cnf.get("fp", "")) if isinstance(cnf, Mapping) else "",
        )


def reuse_decision(
    policy: TierPolicy,
    channel: str,
    session_factors: tuple[str, ...],
    session_channel: str,
    possession: frozenset[str] = POSSESSION,
) -> Decision | None:
    """What an active session is worth on ``channel``: None when it may not be reused there."""
    if not policy.reuse_across_channels and channel != session_channel:
        return None
    return evaluate(policy, channel, session_factors, possession=possession)
