"""The webhook settings, read once from the environment (README lists them)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.sealing import Sealer
from shared.webhooks.domain import Backoff
from shared.webhooks.targets import TargetPolicy


@dataclass(frozen=True)
class WebhookConfig:
    backoff: Backoff
    timeout: float
    poll: float
    concurrency: int
    log_max: int
    targets: TargetPolicy
    sealer: Sealer

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookConfig:
        previous = settings.str_env("WEBHOOK_SECRET_KEY_PREVIOUS", "")
        return cls(
            backoff=Backoff(
                base=settings.float_env("WEBHOOK_BACKOFF_BASE_SECONDS", 5.0, minimum=0.001),
                cap=settings.float_env("WEBHOOK_BACKOFF_MAX_SECONDS", 3600.0, minimum=0.001),
                period=settings.float_env("WEBHOOK_RETRY_PERIOD_SECONDS", 86400.0, minimum=0.0),
            ),
            timeout=settings.float_env("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            poll=settings.float_env("WEBHOOK_POLL_SECONDS", 0.5, minimum=0.01),
            concurrency=settings.int_env("WEBHOOK_CONCURRENCY", 8, minimum=1, maximum=256),
            log_max=settings.int_env("WEBHOOK_LOG_MAX", 1000, minimum=10),
            targets=TargetPolicy.parse(
                settings.dev_mode, settings.str_env("WEBHOOK_ALLOWED_TARGETS", "")
            ),
            # Subscriptions' secrets are sealed at rest; rotation as for identity's factor
            # data: the new key first, the old ones in ..._PREVIOUS until re-PUT.
            sealer=Sealer(
                [sealing_secret(settings), *filter(None, map(str.strip, previous.split(",")))],
                b"sb:webhooks:secret:aes-gcm:v1",
            ),
        )


def sealing_secret(settings: Settings) -> str:
    """``WEBHOOK_SECRET_KEY``, else the internal API key every service already holds (a
    key of its own is derived from it under this purpose's label): a deployment from
    before webhooks needs no new secret to start."""
    if settings.env.get("WEBHOOK_SECRET_KEY", "").strip():
        return settings.secret("WEBHOOK_SECRET_KEY")
    return settings.secret("SB_INTERNAL_API_KEY")
