"""The one place real adapters are built and wired (the composition root)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.identity.adapters import argon2_answers
from services.identity.adapters.argon2_answers import Argon2Answers
from services.identity.adapters.breaker import CircuitBreaker
from services.identity.adapters.delivery import (
    DevDelivery,
    GuardedDelivery,
    SmtpDelivery,
    WebhookDelivery,
)
from services.identity.adapters.delivery_guard_store import DeliveryGuardStore
from services.identity.adapters.destinations import KeyedDestinations
from services.identity.adapters.documents import GuardedDocuments, SandboxDocumentVerifier
from services.identity.adapters.jwt_tokens import SigningKey, TokenService, dev_key_files
from services.identity.adapters.jwt_tokens import load_pem_keys as _load
from services.identity.adapters.pyotp_totp import PyotpCodes
from services.identity.adapters.qr import qr_png_base64
from services.identity.adapters.redis.keys import TRACKED_PREFIXES
from services.identity.adapters.redis.store import RedisStore
from services.identity.adapters.redis.turns import RedisCodeTurns
from services.identity.common import Clock
from services.identity.config import IdentityConfig, secret
from services.identity.delivery_guard import DeliveryGuard
from services.identity.devices import Devices
from services.identity.enrollment import Enrollment
from services.identity.factor_env import PluginEnv
from services.identity.factors import DELIVERY_GROUP, DOCUMENT_GROUP, load_named, load_registry
from services.identity.policies import Policies
from services.identity.ports import DeliveryProvider, Outbox
from services.identity.projection import Projection
from services.identity.reporting import Reporting
from services.identity.sessions import Sessions
from services.identity.verification import Verifications
from shared.config import ConfigError, Settings
from shared.sealing import Sealer
from shared.tracking import TrackedCache

OTP_CHANNELS = ("sms", "email", "voice")

log = logging.getLogger("sb.identity")


def signing_keys(settings: Settings) -> list[SigningKey]:
    """IDENTITY_SIGNING_KEYS (PEM text) or IDENTITY_SIGNING_KEY_FILES (paths), oldest first."""
    text = settings.env.get("IDENTITY_SIGNING_KEYS", "").replace("\\n", "\n")
    files = [p.strip() for p in settings.env.get("IDENTITY_SIGNING_KEY_FILES", "").split(",")]
    paths = [Path(p) for p in files if p]
    if not text.strip() and not paths:
        if not settings.dev_mode:
            raise ConfigError("IDENTITY_SIGNING_KEYS or IDENTITY_SIGNING_KEY_FILES is required")
        paths = dev_key_files(settings.var_dir / "identity" / "keys")
    try:
        keys = _load(text) + [k for p in paths for k in _load(p.read_text())]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"session signing keys cannot be loaded: {exc}") from None
    if not keys:
        raise ConfigError("no PEM private key found in the session signing key settings")
    return keys


def build_delivery(settings: Settings, redis: Any) -> dict[str, DeliveryProvider]:
    default = settings.str_env("IDENTITY_DELIVERY", "dev" if settings.dev_mode else "")
    providers: dict[str, DeliveryProvider] = {}
    for channel in OTP_CHANNELS:
        name = settings.str_env(f"IDENTITY_DELIVERY_{channel.upper()}", default)
        if not name:
            raise ConfigError(
                f"IDENTITY_DELIVERY (or IDENTITY_DELIVERY_{channel.upper()}) "
                "is required outside dev mode"
            )
        if name == "dev":
            if not settings.dev_mode:
                raise ConfigError("the dev delivery provider only runs in dev mode (SB_ENV=dev)")
            providers[channel] = DevDelivery(redis)
        elif name == "webhook":
            url = settings.str_env("IDENTITY_WEBHOOK_URL", "")
            if not url:
                raise ConfigError("IDENTITY_WEBHOOK_URL is required by the webhook provider")
            providers[channel] = WebhookDelivery(
                url,
                secret(settings, "IDENTITY_WEBHOOK_SECRET"),
                retries=settings.int_env("IDENTITY_WEBHOOK_RETRIES", 3, minimum=0, maximum=10),
            )
        elif name == "smtp":
            providers[channel] = SmtpDelivery(
                settings.str_env("IDENTITY_SMTP_HOST", "127.0.0.1"),
                settings.int_env("IDENTITY_SMTP_PORT", 25, minimum=1, maximum=65535),
                settings.str_env("IDENTITY_SMTP_FROM", "no-reply@switchboard.local"),
                starttls=settings.bool_env("IDENTITY_SMTP_STARTTLS", False),
                username=settings.str_env("IDENTITY_SMTP_USER", ""),
                password=settings.env.get("IDENTITY_SMTP_PASSWORD", ""),
            )
        else:
            factory = load_named(DELIVERY_GROUP, name)
            if factory is None:
                raise ConfigError(f"unknown delivery provider {name!r}")
            providers[channel] = factory(settings)  # type: ignore[operator]
    for channel, provider in providers.items():
        if isinstance(provider, DevDelivery):  # Redis itself: nothing to guard
            continue
        breaker = _breaker(settings, redis, f"{provider.name}:{channel}")
        if breaker is not None:
            providers[channel] = GuardedDelivery(provider, breaker)
    return providers


def _breaker(settings: Settings, redis: Any, name: str) -> CircuitBreaker | None:
    """The circuit breaker of one external service identity calls while a request waits;
    None when IDENTITY_DELIVERY_BREAKER_FAILURES is 0."""
    failures = settings.int_env("IDENTITY_DELIVERY_BREAKER_FAILURES", 5, minimum=0, maximum=1000)
    if not failures:
        return None
    seconds = settings.int_env("IDENTITY_DELIVERY_BREAKER_SECONDS", 30, minimum=1, maximum=3600)
    return CircuitBreaker(redis, name, failures=failures, open_seconds=seconds)


def build_documents(settings: Settings, redis: Any = None) -> Any:
    """The document verifier; a third party's behind a circuit breaker (given ``redis``).
    None (the document factor cannot be challenged) for ``none``, and outside dev mode
    when none is named: the sandbox approves any number not ending in 0 or 9, so a
    deployment gets it only by naming it."""
    name = settings.str_env(
        "IDENTITY_DOCUMENT_VERIFIER", "sandbox" if settings.dev_mode else "none"
    )
    if name == "none":
        return None
    if name == "sandbox":
        if not settings.dev_mode:
            log.warning("the sandbox document verifier approves documents by their number")
        return SandboxDocumentVerifier(
            secret(settings, "IDENTITY_DOCUMENT_SECRET"),
            settings.str_env("IDENTITY_DOCUMENT_CALLBACK_URL", ""),
        )
    factory = load_named(DOCUMENT_GROUP, name)
    if factory is None:
        raise ConfigError(f"unknown document verifier {name!r}")
    verifier = factory(settings)  # type: ignore[operator]
    breaker = _breaker(settings, redis, f"documents:{verifier.name}") if redis else None
    return verifier if breaker is None else GuardedDocuments(verifier, breaker)


def factor_sealer(settings: Settings) -> Sealer:
    """Seals factor data at rest under IDENTITY_DATA_KEY. Rotation: the new secret in
    IDENTITY_DATA_KEY, the old ones (comma-separated) in IDENTITY_DATA_KEY_PREVIOUS, which
    only open; the store re-seals a factor under the new key when it reads it."""
    previous = settings.str_env("IDENTITY_DATA_KEY_PREVIOUS", "")
    return Sealer(
        [settings.secret("IDENTITY_DATA_KEY"), *filter(None, map(str.strip, previous.split(",")))],
        b"sb:identity:factor-data:aes-gcm:v1",
    )


def answer_hasher(settings: Settings) -> Argon2Answers:
    """Argon2id at OWASP's m=19 MiB, t=2, p=1 unless the operator says otherwise (the
    tests lower it: their answers need no protection, only the same code path)."""
    return Argon2Answers(
        secret(settings, "IDENTITY_KBA_PEPPER"),
        memory_kib=settings.int_env(
            "IDENTITY_KBA_ARGON2_MEMORY_KIB", argon2_answers.MEMORY_KIB, minimum=8
        ),
        time_cost=settings.int_env(
            "IDENTITY_KBA_ARGON2_TIME_COST", argon2_answers.TIME_COST, minimum=1
        ),
    )


class Wiring:
    """Everything the entrypoints use, built once: the use cases by area, and the
    adapters they run on (tests and the bench reach these; api.py does not)."""

    def __init__(
        self,
        settings: Settings,
        redis: Any,
        publisher: Any,
        read_cache_observer: Callable[[int, int, int], None] | None = None,
    ) -> None:
        keys = settings.int_env("IDENTITY_READ_CACHE_KEYS", 100_000, minimum=0)
        cache = TrackedCache(redis, TRACKED_PREFIXES, keys) if keys else None
        if cache is not None:
            cache.observer = read_cache_observer
        self.config = config = IdentityConfig.from_settings(settings)
        self.store = store = RedisStore(redis, publisher, cache, sealer=factor_sealer(settings))
        providers = build_delivery(settings, redis)
        self.delivery: Callable[[str], DeliveryProvider] = lambda channel: providers[channel]
        self.tokens = TokenService(signing_keys(settings), config.issuer)
        self.registry = load_registry()
        self.documents = build_documents(settings, redis)
        self.guard = build_guard(config, redis, store)
        self._clock = Clock()
        clock = self._clock
        env = PluginEnv(
            store,
            config,
            clock,
            delivery=self.delivery,
            answers=answer_hasher(settings),
            totp=PyotpCodes(),
            documents=self.documents,
            qr=qr_png_base64,
            guard=self.guard,
        )
        self.policies = Policies(store, self.registry, clock)
        self.devices = Devices(store, self.policies, config, clock)
        self.sessions = Sessions(store, self.tokens, self.policies, self.devices, clock)
        self.enrollment = Enrollment(store, self.registry, env, clock, self.guard)
        self.verification = Verifications(
            store,
            store,
            self.tokens,
            self.registry,
            config,
            policies=self.policies,
            devices=self.devices,
            sessions=self.sessions,
            env=env,
            clock=clock,
            documents=self.documents,
            guard=self.guard,
            turns=RedisCodeTurns(store),
            starts=store,
        )
        self.reporting = Reporting(store, self.enrollment, self.devices)
        self.dev_outbox = next(
            (p for p in map(self.delivery, OTP_CHANNELS) if isinstance(p, DevDelivery)), None
        )

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, now: Callable[[], float]) -> None:
        self._clock.now = now  # every use case reads this one clock


def build(
    settings: Settings,
    redis: Any,
    publisher: Any,
    *,
    read_cache_observer: Callable[[int, int, int], None] | None = None,
) -> Wiring:
    return Wiring(settings, redis, publisher, read_cache_observer)


def build_projection(redis: Any) -> Projection:
    """The consumer's use cases: a store without a sealer (it erases factors, never reads
    them) and without a publisher (it writes no events)."""
    return Projection(RedisStore(redis))


def build_outbox(redis: Any) -> Outbox:
    return RedisStore(redis)


def build_guard(config: IdentityConfig, redis: Any, store: RedisStore) -> DeliveryGuard:
    """The delivery fraud guard; its digests are keyed apart from the codes' key."""
    key = hmac.new(config.otp_key, b"sb:identity:delivery-guard:v1", hashlib.sha256).digest()
    return DeliveryGuard(
        DeliveryGuardStore(redis, store), KeyedDestinations(key), otp_lifetime=config.otp_lifetime
    )
