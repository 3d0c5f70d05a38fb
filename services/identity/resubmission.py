"""A code submitted again for the same verification is answered, never counted.

A client that double-submits (a double tap, a retry after a timeout, 20 at once) sends
one code several times. Judged side by side, one check accepts it and the others find
its TOTP step claimed or its OTP consumed: they used to count as failures, and 19 of them
locked the customer out. So each check of a code takes that code's *turn* on its
verification, in the same script as the attempt reservation:

- the first takes it and is judged as before (a wrong code counts, as any guess);
- a resubmission while the turn is held reserves no attempt and is not judged: it waits
  (polling, bounded) for the first one's outcome and answers what a check answers then:
  409 ``verification-closed`` once the verification is approved (as any check of an
  approved verification always did), 423 once it is locked, the verification's state
  (200, nothing counted) when the code satisfied its factor without approving yet, or it
  is judged in its own turn when the first was wrong (a retry of a wrong code counts);
- the same code on another verification is another turn: a replay, judged and counted.

The turn is keyed by an HMAC of the verification, factor and code (the code is never
stored). Parallel *different* wrong codes still each reserve an attempt: guesses count.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from services.identity.ports import Reserved

if TYPE_CHECKING:
    from services.identity.common import Result
    from services.identity.domain.policy import TierPolicy
    from services.identity.verification import Verifications

BUSY_MS = 5000  # a check holding a turn ends far sooner; a crashed one frees it by then
POLL_FIRST, POLL_MAX = 0.005, 0.05  # seconds between looks at a held turn
KEEP_SATISFIED = 3600  # as long as a verification lives


class TurnMarker(Enum):
    BUSY = "busy"  # a check of this code is being judged
    OK = "ok"  # it satisfied its factor without approving the verification


@dataclass(frozen=True)
class TurnHeld:
    marker: TurnMarker
    status: str  # the verification's status (JSON), as the marker was found


@dataclass(frozen=True)
class TurnReservation:
    held: TurnHeld | None  # another check holds the turn: nothing was reserved
    reserved: Reserved


class CodeTurns(Protocol):
    def reserve(
        self, vid: str, cid: str, max_attempts: int, digest: str, busy_ms: int
    ) -> TurnReservation: ...
    def end(self, vid: str, digest: str, keep_seconds: int | None) -> None: ...


def code_digest(key: bytes, vid: str, factor: str, params: Mapping[str, Any]) -> str | None:
    code = params.get("code")
    if not isinstance(code, str) or not code.strip():
        return None
    text = f"{vid}\x00{factor}\x00{''.join(code.split())}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:32]


class CodeTurn:
    """One check's turn for its code: ``reserve`` instead of the plain reservation, and a
    ``with`` block around the check that ends the turn by its outcome (``ok``)."""

    def __init__(self, service: Verifications, vid: str, params: Mapping[str, Any]) -> None:
        self.s, self.vid = service, vid
        key = service.env.secret_key("code-turn")
        self.digest = code_digest(key, vid, str(params.get("factor", "")), params)
        self.held = False
        self.ok = False  # the check satisfied its factor
        self.result: Result | None = None

    def reserve(self, cid: str, policy: TierPolicy) -> Reserved | Result:
        turns = self.s.turns
        if turns is None or self.digest is None:
            return self.s.attempts.reserve_attempt(self.vid, cid, policy.max_attempts)
        deadline = time.monotonic() + BUSY_MS / 1000 + 1
        pause = POLL_FIRST
        while time.monotonic() < deadline:
            turn = turns.reserve(self.vid, cid, policy.max_attempts, self.digest, BUSY_MS)
            if turn.held is None:
                self.held = turn.reserved.reservation.granted
                return turn.reserved
            status = turn.held.status
            if status and status != '"pending"':
                self.s._open(self.vid)  # raises what a check of it answers (409 / 423)
            if turn.held.marker is TurnMarker.OK:
                return self._answered()
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX)
        # Held past its TTL's bound (a stuck worker): judged as any check, counted.
        return self.s.attempts.reserve_attempt(self.vid, cid, policy.max_attempts)

    def _answered(self) -> Result:
        from services.identity.common import Result

        body = self.s.get_verification(self.vid)
        if body["status"] != "pending":
            self.s._open(self.vid)
        return Result(body)

    def __enter__(self) -> CodeTurn:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.held or self.s.turns is None or self.digest is None:
            return
        approved = self.result is not None and self.result.body.get("status") == "approved"
        if approved:
            return  # kept busy until its TTL: later checks meet the approved verification
        keep = KEEP_SATISFIED if kind is None and self.ok else None
        self.s.turns.end(self.vid, self.digest, keep)
