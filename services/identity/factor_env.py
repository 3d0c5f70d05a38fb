"""The ``FactorEnv`` factor plugins get: the ports they may use, nothing more."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from services.identity.config import IdentityConfig
from services.identity.delivery_guard import DeliveryGuard
from services.identity.domain.errors import (
    DeliveryUnavailable,
    DocumentsUnavailable,
    FactorNotChallengeable,
    IdentityError,
    Throttled,
)
from services.identity.domain.factors import FactorRecord
from services.identity.ports import (
    AnswerHasher,
    DeliveryProvider,
    DocumentVerifier,
    FactorStore,
    TotpCodes,
)


class PluginEnv:
    """The ``FactorEnv`` plugins get: the service's ports, nothing more."""

    def __init__(
        self,
        store: FactorStore,
        config: IdentityConfig,
        clock: Callable[[], float],
        *,
        delivery: Callable[[str], DeliveryProvider],
        answers: AnswerHasher,
        totp: TotpCodes,
        documents: DocumentVerifier | None = None,
        qr: Callable[[str], str] | None = None,
        guard: DeliveryGuard | None = None,
    ) -> None:
        self.store, self.config, self.clock = store, config, clock
        self.delivery, self.answers, self.documents, self.qr = delivery, answers, documents, qr
        self.guard, self.totp = guard, totp

    def now(self) -> float:
        return self.clock()

    def secret_key(self, purpose: str) -> bytes:
        return {"otp": self.config.otp_key, "kba": self.config.kba_pepper}.get(
            purpose, hmac.new(self.config.otp_key, purpose.encode(), hashlib.sha256).digest()
        )

    def setting(self, name: str, default: Any = None) -> Any:
        return getattr(self.config, name, default)

    def match_totp(self, secret: str, code: str) -> int | None:
        """The time step ``code`` of ``secret`` belongs to now, if any."""
        return self.totp.match(secret, code, self.clock())

    def accept_step(self, factor_id: str, step: int) -> bool:
        return self.store.accept_step(factor_id, step)

    def store_code(self, verification_id: str, factor: str, record: Any, ttl: int) -> None:
        self.store.store_code(verification_id, factor, record, ttl)

    def peek_code(self, verification_id: str, factor: str) -> Any:
        return self.store.peek_code(verification_id, factor)

    def consume_code(self, verification_id: str, factor: str, digest: str) -> bool:
        used = self.store.consume_code(verification_id, factor, digest)
        if used and self.guard is not None:  # a delivered code converted (fraud guard)
            self.guard.converted(verification_id, factor)
        return used

    def throttle(self, destination: str) -> None:
        c = self.config
        key = hmac.new(c.otp_key, destination.encode(), hashlib.sha256).hexdigest()[:32]
        wait = self.store.throttle(key, c.throttle_window, c.throttle_max, c.throttle_cooldown)
        if wait > 0:
            raise Throttled(wait, "too many codes were sent to this destination; wait")

    def deliver(self, channel: str, destination: str, message: str, meta: Mapping[str, Any]) -> str:
        try:
            return self.delivery(channel).send(channel, destination, message, meta)
        except Exception as exc:  # noqa: BLE001 - any provider failure is one answer to the client
            retry = getattr(exc, "retry_after", None)  # the provider's breaker is open
            raise DeliveryUnavailable(
                "the code could not be sent; try again shortly", retry_after=retry
            ) from exc

    def qr_png_base64(self, text: str) -> str:
        return self.qr(text) if self.qr else ""

    def submit_document(self, verification_id: str, document: Mapping[str, Any]) -> str:
        if self.documents is None:
            raise FactorNotChallengeable("no document verifier is configured")
        try:
            reference = self.documents.submit(verification_id, document)
        except IdentityError:
            raise
        except Exception as exc:  # noqa: BLE001 - a verifier's failure is one answer: retry later
            raise DocumentsUnavailable(
                "the document could not be submitted; try again shortly",
                retry_after=getattr(exc, "retry_after", None),  # the verifier's breaker is open
            ) from exc
        self.store.put_ref("doc", reference, verification_id, 86400)
        return reference

    def hash_answer(self, answer: str) -> str:
        return self.answers.hash(answer)

    def verify_answer(self, answer: str, stored: str) -> tuple[bool, str | None]:
        return self.answers.verify(answer, stored)

    def update_factor_data(
        self, customer_id: str, record: FactorRecord, data: Mapping[str, Any]
    ) -> bool:
        return self.store.replace_factor_data(customer_id, asdict(record), data)


class DeferredSteps(PluginEnv):
    """The env of one check: a TOTP time step the plugin accepts is only noted, so that
    the check can claim it in the same round trip as the approval it leads to (a
    round trip is about 7% of a TOTP flow's cost). The claim is made before anything
    counts the check as a success: a step taken meanwhile fails the check as before."""

    def __init__(self, env: PluginEnv) -> None:
        self.__dict__.update(env.__dict__)
        self.claims: list[tuple[str, int]] = []

    def accept_step(self, factor_id: str, step: int) -> bool:
        self.claims.append((factor_id, step))
        return True
