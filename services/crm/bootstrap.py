"""The one place where the CRM's real adapters are built from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from services.crm.adapters.http_peers import HttpPeerExports
from services.crm.adapters.redis_rate_limit import RedisRateLimiter
from services.crm.adapters.sql_engine import database_url, make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.domain.cases import CasePolicy
from services.crm.domain.classification import Classifier
from services.crm.domain.identifiers import IdentifierPolicy
from services.crm.service import CrmConfig, CrmService
from shared.config import ConfigError, Settings


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip())


def crm_config(settings: Settings) -> CrmConfig:
    try:
        identifiers = IdentifierPolicy(
            default_region=settings.str_env("CRM_DEFAULT_REGION", "CN").upper(),
            extra_types=_csv(settings.str_env("CRM_IDENTIFIER_TYPES", "")),
            extra_junk=_csv(settings.str_env("CRM_JUNK_VALUES", "")),
        )
        classifier = Classifier.from_file(settings.env.get("CRM_CLASSIFICATION_FILE") or None)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(f"CRM configuration: {exc}") from exc
    return CrmConfig(
        identifiers=identifiers,
        cases=CasePolicy(
            merge_window=timedelta(hours=settings.int_env("CRM_MERGE_WINDOW_HOURS", 72, minimum=0)),
            reopen_window=timedelta(days=settings.int_env("CRM_REOPEN_DAYS", 7, minimum=0)),
        ),
        classifier=classifier,
        default_tier=settings.str_env("CRM_DEFAULT_TIER", "default"),
        suppression=timedelta(days=settings.int_env("CRM_SUPPRESSION_DAYS", 30, minimum=0)),
        keep_anonymised_cases=settings.bool_env("CRM_KEEP_ANONYMISED_CASES", False),
        hash_key=settings.secret("CRM_HASH_KEY").encode(),
        lookup_client_limit=settings.int_env("CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE", 600, minimum=1),
        lookup_miss_limit=settings.int_env("CRM_LOOKUP_CLIENT_MISSES_PER_MINUTE", 60, minimum=1),
    )


@dataclass
class Wiring:
    engine: Engine
    store: SqlStore
    service: CrmService


def build(settings: Settings, redis: Any) -> Wiring:
    url = database_url(settings)
    if settings.bool_env("CRM_AUTO_MIGRATE", settings.dev_mode):
        from services.crm.migrate import upgrade

        upgrade(url, lock_dir=settings.var_dir)
    pool_size = settings.int_env("CRM_DB_POOL_SIZE", 8, minimum=1)
    engine = make_engine(url, pool_size=pool_size)
    read_engine = None
    if engine.dialect.name == "postgresql":
        read_engine = make_engine(url, pool_size=pool_size, autocommit=True)
    store = SqlStore(engine, read_engine=read_engine)
    timeout = settings.float_env("CRM_PEER_TIMEOUT_SECONDS", 5.0)
    key = settings.secret("SB_INTERNAL_API_KEY")
    peers = {
        "identity": HttpPeerExports(
            "identity",
            settings.str_env("IDENTITY_URL", "http://127.0.0.1:8001"),
            key,
            timeout=timeout,
        ),
        "routing": HttpPeerExports(
            "routing",
            settings.str_env("ROUTING_URL", "http://127.0.0.1:8003"),
            key,
            timeout=timeout,
        ),
    }
    limiter = RedisRateLimiter(
        redis, limit=settings.int_env("CRM_LOOKUP_LIMIT_PER_MINUTE", 10, minimum=1)
    )
    service = CrmService(store, config=crm_config(settings), peers=peers, limiter=limiter)
    return Wiring(engine, store, service)
