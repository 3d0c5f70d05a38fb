"""Outside dev mode, identity refuses to start without its secrets and providers."""

from __future__ import annotations

from typing import Any

import pytest

from services.identity.adapters.jwt_tokens import generate_pem
from services.identity.app import create_app
from shared.config import ConfigError, Settings

SECRETS = {
    "IDENTITY_OTP_KEY": "k1",
    "IDENTITY_KBA_PEPPER": "k2",
    "IDENTITY_FINGERPRINT_KEY": "k3",
    "IDENTITY_DOCUMENT_SECRET": "k4",
    "IDENTITY_DATA_KEY": "k5",
}


def production(redis_url: str, tmp_path: Any, **env: str) -> Settings:
    return Settings.from_env(
        {
            "SB_ENV": "production",
            "REDIS_URL": redis_url,
            "API_KEYS": "a:b:admin",
            # The kernel's own production secret (it also seals idempotency records).
            "SB_INTERNAL_API_KEY": "internal",
            "SB_VAR_DIR": str(tmp_path),
            **env,
        },
        service="identity",
    )


def complete() -> dict[str, str]:
    """Everything production needs: secrets, a signing key, a webhook provider."""
    return {
        **SECRETS,
        "IDENTITY_SIGNING_KEYS": generate_pem(),
        "IDENTITY_DELIVERY": "webhook",
        "IDENTITY_WEBHOOK_URL": "http://127.0.0.1:9/x",
        "IDENTITY_WEBHOOK_SECRET": "w",
    }


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("IDENTITY_SIGNING_KEYS", "IDENTITY_SIGNING_KEYS"),
        ("IDENTITY_OTP_KEY", "IDENTITY_OTP_KEY"),
        ("IDENTITY_DATA_KEY", "IDENTITY_DATA_KEY"),
        ("IDENTITY_DELIVERY", "IDENTITY_DELIVERY"),
    ],
)
def test_a_missing_setting_stops_the_start_with_a_clear_error(
    redis_url: str, tmp_path: Any, missing: str, message: str
) -> None:
    env = complete()
    env.pop(missing)
    with pytest.raises(ConfigError, match=message):
        create_app(production(redis_url, tmp_path, **env))


def test_the_dev_provider_is_refused_outside_dev_mode(redis_url: str, tmp_path: Any) -> None:
    env = {**SECRETS, "IDENTITY_SIGNING_KEYS": generate_pem(), "IDENTITY_DELIVERY": "dev"}
    with pytest.raises(ConfigError, match="dev mode"):
        create_app(production(redis_url, tmp_path, **env))


def test_a_complete_production_configuration_starts_without_a_dev_outbox(
    redis_url: str, tmp_path: Any
) -> None:
    env = complete()
    app = create_app(production(redis_url, tmp_path, **env))
    r = app.test_client().get("/v1/dev/messages", headers={"Authorization": "Bearer b"})
    assert r.status_code == 404


def test_outside_dev_the_sandbox_document_verifier_must_be_named(
    redis_url: str, tmp_path: Any
) -> None:
    # The sandbox approves any document number not ending in 0 or 9: never by default.
    unnamed = create_app(production(redis_url, tmp_path, **complete()))
    assert unnamed.extensions["sb"].extras["identity"].documents is None
    named = create_app(
        production(redis_url, tmp_path, **complete(), IDENTITY_DOCUMENT_VERIFIER="sandbox")
    )
    assert named.extensions["sb"].extras["identity"].documents.name == "sandbox"
