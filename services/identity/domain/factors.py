"""The factor plugin interface and the registry of factor types.

A factor type is a class implementing ``FactorPlugin``; built-ins live in
``services.identity.factors`` and third parties register theirs under the
entry-point group ``switchboard.identity.factors`` (see docs/plugins.md).
Plugins talk to the outside world only through the ``FactorEnv`` they are
handed (clock, keys, atomic store operations, delivery), so the same class
runs in tests with a fake env.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from services.identity.domain.errors import FactorNotChallengeable, UnknownFactorType

CATEGORIES = ("possession", "knowledge", "inherence", "document")


@dataclass
class FactorRecord:
    factor_id: str
    type: str
    status: str  # pending | active
    created_at: float
    data: dict[str, Any] = field(default_factory=dict)  # private: hashes, secrets
    public: dict[str, Any] = field(default_factory=dict)  # masked view for listings


@dataclass
class Enrollment:
    data: dict[str, Any]
    public: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)  # shown once (a TOTP secret)
    status: str = "active"


@dataclass(frozen=True)
class Attempt:
    """The verification a challenge or check belongs to."""

    verification_id: str
    customer_id: str
    channel: str
    params: Mapping[str, Any]
    challenge: Mapping[str, Any] = field(default_factory=dict)  # what the last challenge stored
    # What the customer reads a delivered code in (shared/i18n.py): the request's language,
    # else the profile's, else the default; "" when the caller chose none.
    language: str = ""


class FactorEnv(Protocol):
    """What the service hands a plugin; implemented over the real ports."""

    def now(self) -> float: ...
    def secret_key(self, purpose: str) -> bytes: ...
    def setting(self, name: str, default: Any = None) -> Any: ...
    def match_totp(self, secret: str, code: str) -> int | None: ...
    def accept_step(self, factor_id: str, step: int) -> bool: ...
    def store_code(self, verification_id: str, factor: str, record: Any, ttl: int) -> None: ...
    def peek_code(self, verification_id: str, factor: str) -> Any: ...
    def consume_code(self, verification_id: str, factor: str, digest: str) -> bool: ...
    def throttle(self, destination: str) -> None: ...
    def deliver(
        self, channel: str, destination: str, message: str, meta: Mapping[str, Any]
    ) -> str: ...
    def qr_png_base64(self, text: str) -> str: ...
    def submit_document(self, verification_id: str, document: Mapping[str, Any]) -> str: ...
    def hash_answer(self, answer: str) -> str: ...
    def verify_answer(self, answer: str, stored: str) -> tuple[bool, str | None]: ...
    def update_factor_data(
        self, customer_id: str, record: FactorRecord, data: Mapping[str, Any]
    ) -> bool: ...


class FactorPlugin(ABC):
    type: ClassVar[str]
    category: ClassVar[str] = "possession"
    #: the check needs a challenge first (a code was sent)
    needs_challenge: ClassVar[bool] = False
    #: a customer can enroll it through POST /factors
    enrollable: ClassVar[bool] = True

    @property
    def possession(self) -> bool:
        return self.category == "possession"

    @abstractmethod
    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        """Validate ``params`` and build what will be stored."""

    def confirm(self, env: FactorEnv, record: FactorRecord, params: Mapping[str, Any]) -> bool:
        raise FactorNotChallengeable(f"{self.type} factors need no confirmation")

    def challenge(
        self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start the factor (send a code...): (public answer, state kept for the check)."""
        raise FactorNotChallengeable(f"{self.type} takes no challenge")

    @abstractmethod
    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        """True when the presented proof satisfies the factor."""

    def not_ready(self, attempt: Attempt) -> str | None:
        """Why a check cannot be judged yet (e.g. a verifier has not answered), or None.
        Asked before an attempt is reserved: waiting is not a wrong answer, so it costs
        no attempt and counts towards no lockout."""
        return None


class FactorRegistry:
    def __init__(self, plugins: Iterable[FactorPlugin] = ()) -> None:
        self._plugins: dict[str, FactorPlugin] = {}
        self._possession: frozenset[str] = frozenset()
        for plugin in plugins:
            self.register(plugin)

    def register(self, plugin: FactorPlugin) -> None:
        if plugin.category not in CATEGORIES:
            raise ValueError(f"{plugin.type}: unknown category {plugin.category!r}")
        self._plugins[plugin.type] = plugin
        # Kept with the plugins: every policy evaluation reads it.
        self._possession = frozenset(t for t, p in self._plugins.items() if p.possession)

    def get(self, factor_type: str) -> FactorPlugin:
        try:
            return self._plugins[factor_type]
        except KeyError:
            raise UnknownFactorType(f"unknown factor type {factor_type!r}") from None

    def __contains__(self, factor_type: object) -> bool:
        return factor_type in self._plugins

    def types(self) -> tuple[str, ...]:
        return tuple(self._plugins)

    def possession_types(self) -> frozenset[str]:
        return self._possession

    def mapping(self) -> Mapping[str, FactorPlugin]:
        return dict(self._plugins)
