"""The interfaces the identity use cases need, one small Protocol per area; adapters
(``adapters/redis/``) implement them. Records (factors, verifications, sessions,
devices) are the JSON documents the use cases wrote; answers that are not records are
frozen dataclasses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.identity.domain.delivery_policy import Destination, Usage
from shared.events import Event


@dataclass(frozen=True)
class Reservation:
    """An attempt reserved before a check is judged (domain/lockout.py)."""

    granted: bool
    remaining: int
    retry_after: int
    held: bool  # at the failure cap: only an administrator unlocks


@dataclass(frozen=True)
class Reserved:
    reservation: Reservation
    factors: list[dict[str, Any]]  # the customer's factors, read in the same round trip


@dataclass(frozen=True)
class LockState:
    """The customer's lock (domain/lockout.py)."""

    retry_after: int  # seconds the timed lock has left (0: none)
    held: bool  # at the failure cap: only an administrator unlocks

    @property
    def locked(self) -> bool:
        return bool(self.retry_after or self.held)


@dataclass(frozen=True)
class Settled:
    """A failed (or refunded) attempt, settled."""

    locked: bool  # this failure locked the customer
    remaining: int


@dataclass(frozen=True)
class SettledSuccess:
    """A successful attempt, settled, with the factor recorded."""

    remaining: int
    satisfied: list[str]  # the verification's satisfied factors after it, sorted


@dataclass(frozen=True)
class Snapshot:
    """What starting a verification reads about the customer, in one round trip."""

    profile: dict[str, str]  # the CRM's fields identity keeps (``tier``)
    sids: list[str]
    factors: list[dict[str, Any]]
    policies: dict[str, str]  # tier -> stored policy JSON (``Policies.policy`` reads it)


@dataclass(frozen=True)
class StatusSnapshot:
    """What a status check reads: the projected tier, live sessions, stored policies."""

    tier: str
    sessions: list[dict[str, Any]]
    policies: dict[str, str]


@dataclass(frozen=True)
class Stats:
    """The KPI counters, summed over shards, and the kept approval durations (ms)."""

    counters: dict[str, int]
    durations: list[float]


@dataclass(frozen=True)
class FreshStart:
    """A start in one round trip: whether the verification was created (under the tier
    the use case expected), and the reads of ``VerificationStore.snapshot`` either way."""

    created: bool
    snapshot: Snapshot


@dataclass(frozen=True)
class AuditPage:
    items: list[dict[str, Any]]
    next_before: str | None


class PolicyStore(Protocol):
    def get_policy(self, tier: str) -> dict[str, Any] | None: ...
    def list_policies(self) -> dict[str, dict[str, Any]]: ...
    def save_policy(
        self, tier: str, policy: dict[str, Any] | None, audit: dict[str, Any], events: list[Event]
    ) -> None: ...
    def audit(self, limit: int, before: str | None) -> AuditPage: ...
    def policies_raw(self, *tiers: str) -> list[str | None]: ...
    def profile(self, cid: str) -> dict[str, str]: ...


class FactorStore(Protocol):
    """Factors, and what factor plugins keep (codes, steps, throttles, references)."""

    def new_id(self, prefix: str, cid: str) -> str: ...
    def factors(self, cid: str) -> list[dict[str, Any]]: ...
    def factor(self, cid: str, fid: str) -> dict[str, Any] | None: ...
    def save_factor(self, cid: str, record: dict[str, Any], events: list[Event]) -> None: ...
    def delete_factor(self, cid: str, fid: str, events: list[Event]) -> bool: ...
    def replace_factor_data(
        self, cid: str, record: Mapping[str, Any], data: Mapping[str, Any]
    ) -> bool: ...
    def accept_step(self, fid: str, step: int) -> bool: ...
    def store_code(self, vid: str, factor: str, record: dict[str, Any], ttl: int) -> None: ...
    def peek_code(self, vid: str, factor: str) -> dict[str, Any] | None: ...
    def consume_code(self, vid: str, factor: str, digest: str) -> bool: ...
    def throttle(self, dest_key: str, window: int, max_sends: int, cooldown: int) -> int: ...
    def put_ref(self, kind: str, key: str, value: str, ttl: int) -> None: ...


class DeviceStore(Protocol):
    def devices(self, cid: str) -> list[dict[str, Any]]: ...
    def save_device(self, cid: str, device: dict[str, Any], events: Sequence[Event]) -> None: ...
    def delete_device(self, cid: str, device_id: str, events: Sequence[Event]) -> bool: ...
    def see_fingerprint(self, fp: str, cid: str, now: float, window: int = 86400) -> int: ...
    def flag(self, fp: str, ttl: int = 86400) -> bool: ...
    def is_flagged(self, fp: str) -> bool: ...
    def publish(self, events: Sequence[Event]) -> None: ...
    def profile(self, cid: str) -> dict[str, str]: ...
    def verification(self, vid: str) -> dict[str, Any] | None: ...


class SessionStore(Protocol):
    def session(self, sid: str) -> dict[str, Any] | None: ...
    def sessions_of(self, cid: str) -> list[dict[str, Any]]: ...
    def sessions_by_id(self, cid: str, sids: Sequence[str]) -> list[dict[str, Any]]: ...
    def revoke_session(
        self, sid: str, events_for: Callable[[dict[str, Any]], list[Event]]
    ) -> dict[str, Any] | None: ...
    def is_flagged(self, fp: str) -> bool: ...
    def status_snapshot(self, cid: str) -> StatusSnapshot: ...
    def count_status_reuse(self, sid: str, channel: str, ttl: int) -> None: ...


class AttemptStore(Protocol):
    """Attempts and lockout: the counters of domain/lockout.py."""

    def reserve_attempt(self, vid: str, cid: str, max_attempts: int) -> Reserved: ...
    def settle_attempt(
        self, vid: str, cid: str, success: bool, max_attempts: int, lockout_seconds: int
    ) -> Settled: ...
    def settle_success(
        self, vid: str, cid: str, factor: str, max_attempts: int, lockout_seconds: int
    ) -> SettledSuccess: ...
    def lock_state(self, cid: str) -> LockState: ...
    def unlock(self, cid: str, events: Sequence[Event]) -> bool: ...


class VerificationStore(Protocol):
    def new_id(self, prefix: str, cid: str) -> str: ...
    def snapshot(self, cid: str) -> Snapshot: ...
    def factors(self, cid: str) -> list[dict[str, Any]]: ...
    def create_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        satisfied: Iterable[str],
        events: list[Event],
        counters: Mapping[str, int] | None = None,
    ) -> None: ...
    def verification(self, vid: str) -> dict[str, Any] | None: ...
    def update_verification(
        self,
        vid: str,
        fields: Mapping[str, Any],
        add_satisfied: Iterable[str] = (),
        events: Sequence[Event] = (),
    ) -> list[str]: ...
    def set_challenge(
        self,
        vid: str,
        factor: str,
        state: Mapping[str, Any],
        *,
        merge: bool = False,
        only_if_reference: str | None = None,
    ) -> bool: ...
    def claim_once(self, key: str, ttl: int) -> bool: ...
    def accept_step(self, fid: str, step: int) -> bool: ...
    def claims_with_approval(self, cid: str, vid: str, sid: str, fid: str) -> bool: ...
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
    ) -> bool: ...
    def publish(self, events: Sequence[Event]) -> None: ...
    def count(self, **counters: int) -> None: ...
    def record_outcome(self, counter: str, duration_ms: float | None) -> None: ...
    def get_ref(self, kind: str, key: str) -> str | None: ...


class FreshStarts(Protocol):
    """A start without a device or a session token in one round trip (optional: without
    it, a start reads the snapshot, then creates)."""

    def start_fresh(
        self,
        vid: str,
        fields: Mapping[str, Any],
        events: list[Event],
        counters: Mapping[str, int],
        fresh: tuple[str, str],
    ) -> FreshStart: ...


class ReportingStore(Protocol):
    def stats(self) -> Stats: ...
    def list_policies(self) -> dict[str, dict[str, Any]]: ...
    def lock_state(self, cid: str) -> LockState: ...
    def verification_ids(self, cid: str) -> list[str]: ...
    def verification(self, vid: str) -> dict[str, Any] | None: ...
    def profile(self, cid: str) -> dict[str, str]: ...
    def devices(self, cid: str) -> list[dict[str, Any]]: ...
    def sessions_of(self, cid: str) -> list[dict[str, Any]]: ...


class ProjectionStore(Protocol):
    """The CRM's profile fields identity keeps (the customer's tier), written exactly once
    per event (``delivery`` is the consumer's ``shared.bus.Delivery``)."""

    def project(
        self, delivery: Any, changes: Sequence[tuple[str, Mapping[str, str], int]]
    ) -> None: ...
    def unmerge(self, delivery: Any, cid: str, at_ms: int) -> None: ...
    def erase_customer(self, cid: str, at_ms: int) -> None: ...


class Outbox(Protocol):
    """Cluster only: the shards' outboxes relayed to the event stream."""

    cluster: bool

    def acquire_lease(self, holder: str, ttl_ms: int) -> bool: ...
    def relay(self, target: str, maxlen: int, batch: int = 500) -> int: ...


class AnswerHasher(Protocol):
    """Slow, peppered hashes of knowledge answers (adapters/argon2_answers.py)."""

    def hash(self, answer: str) -> str: ...
    def verify(self, answer: str, stored: str) -> tuple[bool, str | None]: ...


class TotpCodes(Protocol):
    """TOTP codes of a base32 secret (adapters/pyotp_totp.py)."""

    def match(self, secret: str, code: str, unix_time: float) -> int | None: ...


class Tokens(Protocol):
    def sign(self, claims: Mapping[str, Any]) -> str: ...
    def verify(self, token: str) -> dict[str, Any] | None: ...
    def jwks(self) -> dict[str, Any]: ...


class DeliveryProvider(Protocol):
    name: str

    def send(self, channel: str, to: str, message: str, meta: Mapping[str, Any]) -> str: ...


class DocumentVerifier(Protocol):
    name: str

    def submit(self, verification_id: str, document: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True)
class Admission:
    """What one check-and-count of a code send answered: whether it was counted, the
    counters before it, and the prefix's judged sends and conversions (this one included)."""

    admitted: bool
    usage: Usage
    sends: int
    converted: int


@dataclass(frozen=True)
class PrefixBlock:
    prefix: str
    until: float


@dataclass(frozen=True)
class GuardStats:
    refused: Mapping[str, int]  # reason -> sends refused
    auto_blocks: int


class DeliveryGuardStore(Protocol):
    """The delivery fraud guard's policy, counters and blocks (one slot: see the adapter)."""

    def policy_raw(self) -> dict[str, Any] | None: ...
    def save_policy(
        self, policy: Mapping[str, Any], audit: Mapping[str, Any], events: list[Event]
    ) -> None: ...
    def audit(self, entry: Mapping[str, Any]) -> None: ...
    def admit(
        self,
        *,
        now: float,
        digest: str,
        customer: str,
        client: str,
        prefix: str,
        caps: tuple[int, int, int, int],
        window: int,
        grace: int,
        marker: str,
        marker_ttl: int,
    ) -> Admission: ...
    def converted(self, marker: str) -> bool: ...
    def refused(self, reason: str) -> None: ...
    def block(self, prefix: str, until: float, now: float) -> bool: ...
    def blocks(self, now: float) -> list[PrefixBlock]: ...
    def unblock(self, prefix: str) -> bool: ...
    def stats(self) -> GuardStats: ...
    def publish(self, events: Sequence[Event]) -> None: ...


class Destinations(Protocol):
    """An address as the guard sees it: calling code, line type, prefix, keyed digest."""

    def describe(self, channel: str, address: str, prefix_digits: int) -> Destination: ...
    def digest(self, value: str) -> str: ...
