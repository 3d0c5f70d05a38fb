"""Alembic environment of the CRM: the URL comes from the settings (DATABASE_URL,
or the SQLite file under var/), never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_tables import metadata

config = context.config
MIGRATION_LOCK = 0x5B0C_0A11_0001  # any constant the database's other locks do not use


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas migrating at once (a file lock holds only within one container):
            # one at a time, held to the commit; the next then finds the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
