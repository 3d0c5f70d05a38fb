"""The identity service's settings (the template's config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.i18n import DEFAULT_LANGUAGE, default_language


def secret(settings: Settings, name: str) -> bytes:
    return settings.secret(name).encode()


@dataclass(frozen=True)
class IdentityConfig:
    otp_key: bytes
    kba_pepper: bytes
    fingerprint_key: bytes
    document_secret: bytes
    issuer: str = "switchboard-identity"
    totp_issuer: str = "Switchboard"
    otp_lifetime: int = 300
    kba_iterations: int = 60_000  # PBKDF2 of hashes made before Argon2id (they carry theirs)
    risk_max_customers: int = 3
    throttle_window: int = 600
    throttle_max: int = 5
    throttle_cooldown: int = 30
    dev_mode: bool = False
    default_language: str = DEFAULT_LANGUAGE  # of delivered codes (shared/i18n.py)

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityConfig:
        return cls(
            otp_key=secret(settings, "IDENTITY_OTP_KEY"),
            kba_pepper=secret(settings, "IDENTITY_KBA_PEPPER"),
            fingerprint_key=secret(settings, "IDENTITY_FINGERPRINT_KEY"),
            document_secret=secret(settings, "IDENTITY_DOCUMENT_SECRET"),
            issuer=settings.str_env("IDENTITY_ISSUER", "switchboard-identity"),
            totp_issuer=settings.str_env("IDENTITY_TOTP_ISSUER", "Switchboard"),
            otp_lifetime=settings.int_env("IDENTITY_OTP_LIFETIME", 300, minimum=30, maximum=600),
            kba_iterations=settings.int_env("IDENTITY_KBA_ITERATIONS", 60_000, minimum=1000),
            risk_max_customers=settings.int_env("IDENTITY_RISK_MAX_CUSTOMERS", 3, minimum=1),
            throttle_window=settings.int_env("IDENTITY_THROTTLE_WINDOW", 600, minimum=1),
            throttle_max=settings.int_env("IDENTITY_THROTTLE_MAX", 5, minimum=1),
            throttle_cooldown=settings.int_env("IDENTITY_THROTTLE_COOLDOWN", 30, minimum=0),
            dev_mode=settings.dev_mode,
            default_language=default_language(settings),
        )
