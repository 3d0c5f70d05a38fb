"""Engines for SQLite (default, a file under var/) and PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from shared.config import ConfigError, Settings


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or in dev mode ``sqlite:///<var_dir>/crm.db``; ``postgresql://`` means
    psycopg 3. Outside dev mode it is required: a SQLite file in a container is a database
    of that one process, lost with it."""
    if not settings.database_url and not settings.dev_mode:
        raise ConfigError("DATABASE_URL is required outside dev mode (SB_ENV=dev)")
    url = settings.database_url or f"sqlite:///{Path(settings.var_dir) / 'crm.db'}"
    return normalise_url(url)


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 8, autocommit: bool = False) -> Engine:
    """``autocommit``: an engine for reads only; on PostgreSQL its connections never
    send BEGIN/COMMIT. (pysqlite never begins a transaction for a SELECT anyway.)

    ``hide_parameters``: a database error's message leaves out the bound values, which
    are customer names and identifiers, so the logged traceback of a 500 holds none."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL: readers never wait for the writer; busy_timeout: writers queue, not fail.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Reads through the OS page cache without a read() per page.
            cursor.execute("PRAGMA mmap_size=268435456")
            # A deleted row's bytes are overwritten, not just unlinked: an erasure
            # reaches the file (the WAL is emptied by sql_compaction's checkpoint).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # Autocommit connections never hold a transaction: nothing to roll back on return.
    options: dict[str, Any] = (
        {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}
    )
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=16,
        pool_recycle=1800,
        hide_parameters=True,
        **options,
    )
