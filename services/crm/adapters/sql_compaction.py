"""The CRM database's part of compaction after erasures (``shared.compaction``).

SQLite: every connection runs with ``secure_delete`` (``sql_engine``), so a
deleted row's bytes are overwritten in its page and freed pages are zeroed; the
write-ahead log still holds the pages as they were before, until a checkpoint
copies the new pages over and ``TRUNCATE`` empties the log. A checkpoint that a
reader's snapshot holds back reports ``busy``: the run fails and is retried.

PostgreSQL: a deleted row is a dead tuple until a vacuum, and a plain VACUUM
only marks its space free: its bytes stay in the page until something else is
written there (seen with pageinspect). ``VACUUM FULL`` rewrites each table and
its indexes into new files and unlinks the old ones; it locks the table while
it copies, which is why it runs at most once per ``SB_COMPACTION_SECONDS``.
``CRM_ERASURE_VACUUM`` chooses: ``full`` (default), ``plain`` (no lock; bytes
may linger until reused) or ``off`` (the operator vacuums). PostgreSQL's WAL
segments, archives and base backups are the operator's (docs/crm.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_tables import metadata
from shared import compaction
from shared.config import ConfigError, Settings

log = logging.getLogger("sb.crm.compaction")

JOB = "crm-sql"
VACUUM_MODES = ("full", "plain", "off")


def vacuum_mode(settings: Settings) -> str:
    mode = settings.str_env("CRM_ERASURE_VACUUM", "full").strip().lower()
    if mode not in VACUUM_MODES:
        raise ConfigError(f"CRM_ERASURE_VACUUM must be one of {', '.join(VACUUM_MODES)}")
    return mode


def compact(engine: Engine, mode: str = "full", beat: compaction.Beat | None = None) -> None:
    """Make the deleted rows' bytes leave the database files (see the module's doc)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            busy, _log, _moved = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if busy:
            raise compaction.CompactionFailed("a reader held the SQLite checkpoint back")
        return
    if mode == "off":
        return
    verb = "VACUUM FULL" if mode == "full" else "VACUUM"
    # VACUUM refuses to run inside a transaction block.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        prep = conn.dialect.identifier_preparer
        for table in _tables():
            if beat is not None:
                beat()
            conn.exec_driver_sql(f"{verb} {prep.format_table(table)}")


def _tables() -> list[Table]:
    # Every CRM table: which hold a customer's values changes as the schema grows.
    return list(metadata.sorted_tables)


def loop(redis: Any, engine: Engine, settings: Settings) -> Callable[[threading.Event], None]:
    """The CRM consumer's runnable: the database's part after erasures."""
    mode = vacuum_mode(settings)

    def work(beat: compaction.Beat) -> None:
        compact(engine, mode, beat)

    return compaction.loop(redis, JOB, work, compaction.window(settings))


class CompactionRequests:
    """The ``Compactor`` port: after an erasure, the database's files (and the Redis
    AOF, which held the erased customer's idempotent responses) are compacted."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def request(self) -> None:
        compaction.request(self.redis, compaction.REDIS_JOB, JOB)
