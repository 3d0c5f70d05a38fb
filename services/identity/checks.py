"""The check of a verification: reserve an attempt, judge, settle, approve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.identity.common import Result, new_event
from services.identity.domain.errors import CustomerLocked, FactorNotReady, StepTaken
from services.identity.domain.factors import Attempt
from services.identity.domain.policy import TierPolicy
from services.identity.factor_env import DeferredSteps
from services.identity.ports import Settled
from services.identity.resubmission import CodeTurn
from services.identity.verification import Verifications


def check(self: Verifications, vid: str, params: Mapping[str, Any]) -> Result:
    with CodeTurn(self, vid, params) as turn:  # a resubmitted code is not counted
        turn.result = _check(self, vid, params, turn)
    return turn.result


def _check(self: Verifications, vid: str, params: Mapping[str, Any], turn: CodeTurn) -> Result:
    v, policy = self._open(vid, lock_checked_later=True)  # the reservation checks the lock
    cid, factor = v["customer_id"], params["factor"]
    plugin = self._factor_for(v, policy, factor)
    attempt = Attempt(vid, cid, v["channel"], params, v["challenges"].get(factor, {}))
    waiting = plugin.not_ready(attempt)
    if waiting:
        lock = self.attempts.lock_state(cid)  # locked stays 423, whatever the factor
        if lock.locked:
            raise CustomerLocked(lock.retry_after or 1, lock.held)
        raise FactorNotReady(waiting)
    reserved = turn.reserve(cid, policy)
    if isinstance(reserved, Result):
        return reserved  # the same code's check answered it
    r, factors = reserved.reservation, reserved.factors
    remaining = r.remaining
    if not r.granted:
        self._lock(vid, v, policy)
        raise CustomerLocked(r.retry_after, r.held)
    ok = combined = False
    predicted = sorted({*v["satisfied"], factor})
    decision = self._decide({**v, "satisfied": predicted}, policy)
    env = DeferredSteps(self.env)
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
            failed = _settle_failure(self, vid, cid, policy)
            locked, remaining = failed.locked, failed.remaining
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
            failed = _settle_failure(self, vid, cid, policy)
            locked, remaining = failed.locked, failed.remaining
    if ok:
        settled = self.attempts.settle_success(
            vid, cid, factor, policy.max_attempts, policy.lockout_seconds
        )
        remaining, v["satisfied"] = settled.remaining, settled.satisfied
        decision = self._decide(v, policy)
        if decision.approved:
            return self._approve(vid, v, policy, decision)
    else:
        decision = self._decide(v, policy)
        self.store.publish(
            [
                new_event(
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


def _settle_failure(self: Verifications, vid: str, cid: str, policy: TierPolicy) -> Settled:
    return self.attempts.settle_attempt(
        vid, cid, False, policy.max_attempts, policy.lockout_seconds
    )
