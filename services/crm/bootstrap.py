"""The one place where the CRM's real adapters are built from the settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from services.crm.adapters import sql_compaction, sql_tables
from services.crm.adapters.http_peers import HttpPeerExports
from services.crm.adapters.redis_rate_limit import RedisRateLimiter
from services.crm.adapters.sql_engine import database_url, make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.config import CrmConfig
from services.crm.service import CrmService
from shared.config import Settings
from shared.sql_outbox import relay_outbox


@dataclass
class Wiring:
    settings: Settings
    redis: Any
    engine: Engine
    store: SqlStore
    service: CrmService

    def relay(self) -> int:
        """Publish the next outbox rows to sb:events:crm; how many were relayed."""
        return relay_outbox(
            self.engine, sql_tables.outbox, self.redis, maxlen=self.settings.stream_maxlen
        )

    def compaction_loop(self) -> Callable[[threading.Event], None]:
        """The consumer's runnable compacting the database after erasures."""
        return sql_compaction.loop(self.redis, self.engine, self.settings)


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
    service = CrmService(
        store,
        config=CrmConfig.from_settings(settings),
        peers=peers,
        limiter=limiter,
        compactor=sql_compaction.CompactionRequests(redis),
    )
    return Wiring(settings, redis, engine, store, service)
