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
from services.crm.config import CrmConfig, WiringConfig
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
    wiring = WiringConfig.from_settings(settings)
    url = database_url(settings)
    if wiring.auto_migrate:
        from services.crm.migrate import upgrade

        upgrade(url, lock_dir=settings.var_dir)
    engine = make_engine(url, pool_size=wiring.pool_size)
    read_engine = None
    if engine.dialect.name == "postgresql":
        read_engine = make_engine(url, pool_size=wiring.pool_size, autocommit=True)
    store = SqlStore(engine, read_engine=read_engine)
    peers = {
        name: HttpPeerExports(name, base, wiring.internal_key, timeout=wiring.peer_timeout)
        for name, base in (("identity", wiring.identity_url), ("routing", wiring.routing_url))
    }
    service = CrmService(
        store,
        config=CrmConfig.from_settings(settings),
        peers=peers,
        limiter=RedisRateLimiter(redis, limit=wiring.lookup_limit),
        compactor=sql_compaction.CompactionRequests(redis),
    )
    return Wiring(settings, redis, engine, store, service)
