"""Fakes of identity's ports for use-case unit tests: plain Python state, no Redis.

Each fake inherits the port Protocols it stands for, so mypy checks it against them
(a port method it lacks or mistypes fails ``make lint``). The attempt counters follow
the pure rule of ``domain/lockout.py``, which the Redis scripts are tested against.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from services.identity.domain import lockout
from services.identity.domain.errors import StepTaken
from services.identity.ports import (
    AttemptStore,
    AuditPage,
    DeviceStore,
    FactorStore,
    LockState,
    PolicyStore,
    Reservation,
    Reserved,
    SessionStore,
    Settled,
    SettledSuccess,
    Snapshot,
    StatusSnapshot,
    Tokens,
    VerificationStore,
)
from shared.events import Event


class FakeStore(
    PolicyStore, FactorStore, DeviceStore, SessionStore, AttemptStore, VerificationStore
):
    """Every store port of the verification use cases, on dicts and sets."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._ids = itertools.count(1)
        self.policies: dict[str, str] = {}  # tier -> policy JSON
        self.profiles: dict[str, dict[str, str]] = {}
        self.factor_rows: dict[str, dict[str, dict[str, Any]]] = {}  # cid -> fid -> record
        self.steps: dict[str, int] = {}  # fid -> last accepted TOTP step
        self.codes: dict[tuple[str, str], dict[str, Any]] = {}
        self.refs: dict[tuple[str, str], str] = {}
        self.device_rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.sightings: dict[str, set[str]] = {}
        self.flagged: set[str] = set()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.verifications: dict[str, dict[str, Any]] = {}
        self.satisfied: dict[str, set[str]] = {}
        self.attempts: dict[str, int] = {}  # vid -> reserved attempts
        self.customers: dict[str, lockout.Counters] = {}  # failures, lock, streak
        self.claims: set[str] = set()
        self.counters: dict[str, int] = {}
        self.events: list[Event] = []

    # -- shared ------------------------------------------------------------------------
    def new_id(self, prefix: str, cid: str) -> str:
        return f"{prefix}-{next(self._ids):032x}"

    def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def profile(self, cid: str) -> dict[str, str]:
        return dict(self.profiles.get(cid, {}))

    def is_flagged(self, fp: str) -> bool:
        return fp in self.flagged

    def verification(self, vid: str) -> dict[str, Any] | None:
        found = self.verifications.get(vid)
        if found is None:
            return None
        # A copy, as a read of Redis is: the use cases change what they read.
        out: dict[str, Any] = json.loads(json.dumps(found))
        out["satisfied"] = sorted(self.satisfied.get(vid, set()))
        out["attempts"] = self.attempts.get(vid, 0)
        out["_policies"] = dict(self.policies)
        return out

    def accept_step(self, fid: str, step: int) -> bool:
        if step <= self.steps.get(fid, -1):
            return False
        self.steps[fid] = step
        return True

    # -- policies ----------------------------------------------------------------------
    def get_policy(self, tier: str) -> dict[str, Any] | None:
        raw = self.policies.get(tier)
        return None if raw is None else dict(json.loads(raw))

    def list_policies(self) -> dict[str, dict[str, Any]]:
        return {tier: json.loads(raw) for tier, raw in self.policies.items()}

    def save_policy(
        self, tier: str, policy: dict[str, Any] | None, audit: dict[str, Any], events: list[Event]
    ) -> None:
        if policy is None:
            self.policies.pop(tier, None)
        else:
            self.policies[tier] = json.dumps(policy)
        self.publish(events)

    def audit(self, limit: int, before: str | None) -> AuditPage:
        return AuditPage([], None)

    def policies_raw(self, *tiers: str) -> list[str | None]:
        return [self.policies.get(t) for t in tiers]

    # -- factors -----------------------------------------------------------------------
    def factors(self, cid: str) -> list[dict[str, Any]]:
        rows = self.factor_rows.get(cid, {}).values()
        return sorted((dict(r) for r in rows), key=lambda f: (f["created_at"], f["factor_id"]))

    def factor(self, cid: str, fid: str) -> dict[str, Any] | None:
        found = self.factor_rows.get(cid, {}).get(fid)
        return None if found is None else dict(found)

    def save_factor(self, cid: str, record: dict[str, Any], events: list[Event]) -> None:
        self.factor_rows.setdefault(cid, {})[record["factor_id"]] = dict(record)
        self.publish(events)

    def delete_factor(self, cid: str, fid: str, events: list[Event]) -> bool:
        if self.factor_rows.get(cid, {}).pop(fid, None) is None:
            return False
        self.publish(events)
        return True

    def replace_factor_data(
        self, cid: str, record: Mapping[str, Any], data: Mapping[str, Any]
    ) -> bool:
        found = self.factor_rows.get(cid, {}).get(record["factor_id"])
        if found is None or found["data"] != record["data"]:
            return False
        found["data"] = dict(data)
        return True

    def store_code(self, vid: str, factor: str, record: dict[str, Any], ttl: int) -> None:
        self.codes[(vid, factor)] = dict(record)

    def peek_code(self, vid: str, factor: str) -> dict[str, Any] | None:
        return self.codes.get((vid, factor))

    def consume_code(self, vid: str, factor: str, digest: str) -> bool:
        found = self.codes.get((vid, factor))
        if found is None or found.get("digest") != digest:
            return False
        del self.codes[(vid, factor)]
        return True

    def throttle(self, dest_key: str, window: int, max_sends: int, cooldown: int) -> int:
        return 0

    def put_ref(self, kind: str, key: str, value: str, ttl: int) -> None:
        self.refs[(kind, key)] = value

    def get_ref(self, kind: str, key: str) -> str | None:
        return self.refs.get((kind, key))

    # -- devices -----------------------------------------------------------------------
    def devices(self, cid: str) -> list[dict[str, Any]]:
        return [dict(d) for d in self.device_rows.get(cid, {}).values()]

    def save_device(self, cid: str, device: dict[str, Any], events: Sequence[Event]) -> None:
        self.device_rows.setdefault(cid, {})[device["device_id"]] = dict(device)
        self.publish(events)

    def delete_device(self, cid: str, device_id: str, events: Sequence[Event]) -> bool:
        if self.device_rows.get(cid, {}).pop(device_id, None) is None:
            return False
        self.publish(events)
        return True

    def see_fingerprint(self, fp: str, cid: str, now: float, window: int = 86400) -> int:
        seen = self.sightings.setdefault(fp, set())
        seen.add(cid)
        return len(seen)

    def flag(self, fp: str, ttl: int = 86400) -> bool:
        fresh = fp not in self.flagged
        self.flagged.add(fp)
        return fresh

    # -- sessions ----------------------------------------------------------------------
    def _live(self, sid: str) -> dict[str, Any] | None:
        found = self.sessions.get(sid)
        return dict(found) if found and found["exp"] > self.clock() else None

    def session(self, sid: str) -> dict[str, Any] | None:
        return self._live(sid)

    def sessions_of(self, cid: str) -> list[dict[str, Any]]:
        mine = [s for sid, s in sorted(self.sessions.items()) if s["customer_id"] == cid]
        return [s for s in map(self._live, (s["sid"] for s in mine)) if s]

    def sessions_by_id(self, cid: str, sids: Sequence[str]) -> list[dict[str, Any]]:
        return [s for s in map(self._live, sids) if s and s["customer_id"] == cid]

    def revoke_session(
        self, sid: str, events_for: Callable[[dict[str, Any]], list[Event]]
    ) -> dict[str, Any] | None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            self.publish(events_for(session))
        return session

    def status_snapshot(self, cid: str) -> StatusSnapshot:
        tier = self.profiles.get(cid, {}).get("tier", "")
        return StatusSnapshot(tier, self.sessions_of(cid), dict(self.policies))

    def count_status_reuse(self, sid: str, channel: str, ttl: int) -> None:
        self.count(status_reused=1)

    # -- attempts (domain/lockout.py's rule) --------------------------------------------
    def _counters(self, vid: str, cid: str) -> lockout.Counters:
        c = self.customers.get(cid, lockout.Counters())
        return lockout.Counters(self.attempts.get(vid, 0), c.failures, c.locked_until, c.streak)

    def _keep(self, vid: str, cid: str, c: lockout.Counters) -> None:
        self.attempts[vid] = c.attempts
        self.customers[cid] = lockout.Counters(0, c.failures, c.locked_until, c.streak)

    def reserve_attempt(self, vid: str, cid: str, max_attempts: int) -> Reserved:
        r, after = lockout.reserve(self._counters(vid, cid), max_attempts, self.clock())
        self._keep(vid, cid, after)
        reservation = Reservation(r.granted, r.remaining, r.retry_after, r.held)
        return Reserved(reservation, self.factors(cid) if r.granted else [])

    def _settle(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_s: int, approves: bool
    ) -> Settled:
        locked, after = lockout.settle(
            self._counters(vid, cid), success, max_attempts, lockout_s, self.clock(),
            approves=approves,
        )  # fmt: skip
        self._keep(vid, cid, after)
        return Settled(locked, 0 if locked else lockout.remaining(after, max_attempts))

    def settle_attempt(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_seconds: int
    ) -> Settled:
        return self._settle(vid, cid, success, max_attempts, lockout_seconds, True)

    def settle_success(
        self, vid: str, cid: str, factor: str, max_attempts: int, lockout_seconds: int
    ) -> SettledSuccess:
        settled = self._settle(vid, cid, True, max_attempts, lockout_seconds, False)
        self.satisfied.setdefault(vid, set()).add(factor)
        return SettledSuccess(settled.remaining, sorted(self.satisfied[vid]))

    def lock_state(self, cid: str) -> LockState:
        c = self.customers.get(cid, lockout.Counters())
        left = max(0, int(c.locked_until - self.clock()))
        return LockState(left, c.held)

    def unlock(self, cid: str, events: Sequence[Event]) -> bool:
        c = self.customers.get(cid, lockout.Counters())
        if c == lockout.unlock(c):
            return False
        self.customers[cid] = lockout.unlock(c)
        self.publish(events)
        return True

    # -- verifications -----------------------------------------------------------------
    def snapshot(self, cid: str) -> Snapshot:
        sids = sorted(s["sid"] for s in self.sessions.values() if s["customer_id"] == cid)
        return Snapshot(self.profile(cid), sids, self.factors(cid), dict(self.policies))

    def create_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        satisfied: Iterable[str],
        events: list[Event],
        counters: Mapping[str, int] | None = None,
    ) -> None:
        self.verifications[vid] = json.loads(json.dumps(dict(fields)))
        self.satisfied[vid] = set(satisfied)
        self.publish(events)
        self.count(**dict(counters or {}))

    def update_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        add_satisfied: Iterable[str] = (),
        events: Sequence[Event] = (),
    ) -> list[str]:
        self.verifications[vid].update(json.loads(json.dumps(dict(fields))))
        self.satisfied.setdefault(vid, set()).update(add_satisfied)
        self.publish(events)
        return sorted(self.satisfied[vid])

    def set_challenge(
        self,
        vid: str,
        factor: str,
        state: Mapping[str, Any],
        *,
        merge: bool = False,
        only_if_reference: str | None = None,
    ) -> bool:
        v = self.verifications.get(vid)
        if v is None:
            return False
        current = v["challenges"].get(factor) or {}
        if only_if_reference is not None and current.get("reference") != only_if_reference:
            return False
        v["challenges"][factor] = {**current, **state} if merge else dict(state)
        return True

    def claim_once(self, key: str, ttl: int) -> bool:
        fresh = key not in self.claims
        self.claims.add(key)
        return fresh

    def claims_with_approval(self, cid: str, vid: str, sid: str, fid: str) -> bool:
        return True  # one process, one "slot": the combined path, as on a standalone Redis

    def commit_approval(
        self,
        session: dict[str, Any],
        ttl: int,
        vid: str,
        fields: Mapping[str, Any],
        events: Sequence[Event],
        counters: Mapping[str, int],
        duration_ms: float | None,
        settle: tuple[str, int] | None = None,
        claim: tuple[str, int] | None = None,
    ) -> bool:
        if claim is not None and not self.accept_step(*claim):
            raise StepTaken(claim[0])
        cid = session["customer_id"]
        if settle is not None:
            factor, max_attempts = settle
            self._settle(vid, cid, True, max_attempts, 0, True)
            self.satisfied.setdefault(vid, set()).add(factor)
        self.sessions[session["sid"]] = dict(session)
        self.verifications[vid].update(json.loads(json.dumps(dict(fields))))
        if not self.claim_once(f"approved:{vid}", ttl):
            return False
        self.publish(events)
        self.count(**dict(counters))
        return True

    def count(self, **counters: int) -> None:
        for name, n in counters.items():
            self.counters[name] = self.counters.get(name, 0) + n

    def record_outcome(self, counter: str, duration_ms: float | None) -> None:
        self.count(**{counter: 1})


class FakeTokens(Tokens):
    """Tokens as opaque names of the claims they were signed with."""

    def __init__(self) -> None:
        self.signed: dict[str, dict[str, Any]] = {}

    def sign(self, claims: Mapping[str, Any]) -> str:
        token = f"token-{len(self.signed) + 1}"
        self.signed[token] = dict(claims)
        return token

    def verify(self, token: str) -> dict[str, Any] | None:
        found = self.signed.get(token)
        return None if found is None else dict(found)

    def jwks(self) -> dict[str, Any]:
        return {"keys": []}
