"""The CRM's settings: ``CrmConfig.from_settings`` reads them once, at start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from services.crm.domain.case_numbers import new_case_number
from services.crm.domain.cases import CasePolicy
from services.crm.domain.classification import Classifier
from services.crm.domain.identifiers import IdentifierPolicy
from shared.config import ConfigError, Settings


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


@dataclass
class CrmConfig:
    identifiers: IdentifierPolicy = field(default_factory=IdentifierPolicy)
    cases: CasePolicy = field(default_factory=CasePolicy)
    classifier: Classifier = field(default_factory=Classifier.from_file)
    default_tier: str = "default"
    suppression: timedelta = timedelta(days=30)
    keep_anonymised_cases: bool = False
    hash_key: bytes = b"crm-dev-hash-key"
    # Self-service lookups per minute by one API client over all the callers it names
    # (the per-caller budget is the limiter's own).
    lookup_client_limit: int = 600
    # Failed lookups per minute by one API client, whatever callers it names.
    lookup_miss_limit: int = 60
    case_numbers: Callable[[], str] = new_case_number

    @classmethod
    def from_settings(cls, settings: Settings) -> CrmConfig:
        try:
            identifiers = IdentifierPolicy(
                default_region=settings.str_env("CRM_DEFAULT_REGION", "CN").upper(),
                extra_types=_csv(settings.str_env("CRM_IDENTIFIER_TYPES", "")),
                extra_junk=_csv(settings.str_env("CRM_JUNK_VALUES", "")),
            )
            classifier = Classifier.from_file(settings.env.get("CRM_CLASSIFICATION_FILE") or None)
        except (ValueError, OSError, KeyError) as exc:
            raise ConfigError(f"CRM configuration: {exc}") from exc
        return cls(
            identifiers=identifiers,
            cases=CasePolicy(
                merge_window=timedelta(
                    hours=settings.int_env("CRM_MERGE_WINDOW_HOURS", 72, minimum=0)
                ),
                reopen_window=timedelta(days=settings.int_env("CRM_REOPEN_DAYS", 7, minimum=0)),
            ),
            classifier=classifier,
            default_tier=settings.str_env("CRM_DEFAULT_TIER", "default"),
            suppression=timedelta(days=settings.int_env("CRM_SUPPRESSION_DAYS", 30, minimum=0)),
            keep_anonymised_cases=settings.bool_env("CRM_KEEP_ANONYMISED_CASES", False),
            hash_key=settings.secret("CRM_HASH_KEY").encode(),
            lookup_client_limit=settings.int_env(
                "CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE", 600, minimum=1
            ),
            lookup_miss_limit=settings.int_env(
                "CRM_LOOKUP_CLIENT_MISSES_PER_MINUTE", 60, minimum=1
            ),
        )


@dataclass(frozen=True)
class WiringConfig:
    """The adapters' settings, read by ``bootstrap.build`` (the database URL itself is
    ``adapters.sql_engine.database_url``'s: it knows the drivers' spellings)."""

    auto_migrate: bool
    pool_size: int
    peer_timeout: float
    identity_url: str
    routing_url: str
    internal_key: str
    lookup_limit: int

    @classmethod
    def from_settings(cls, settings: Settings) -> WiringConfig:
        return cls(
            auto_migrate=settings.bool_env("CRM_AUTO_MIGRATE", settings.dev_mode),
            pool_size=settings.int_env("CRM_DB_POOL_SIZE", 8, minimum=1),
            peer_timeout=settings.float_env("CRM_PEER_TIMEOUT_SECONDS", 5.0),
            identity_url=settings.str_env("IDENTITY_URL", "http://127.0.0.1:8001"),
            routing_url=settings.str_env("ROUTING_URL", "http://127.0.0.1:8003"),
            internal_key=settings.secret("SB_INTERNAL_API_KEY"),
            lookup_limit=settings.int_env("CRM_LOOKUP_LIMIT_PER_MINUTE", 10, minimum=1),
        )
