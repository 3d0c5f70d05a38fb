"""Test helpers of the CRM: real databases, fresh per test (SQLite always,
PostgreSQL when TEST_DATABASE_URL is set). ``create_all`` lives here, in test
support only; services migrate with Alembic."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import text

from services.crm.adapters.sql_engine import make_engine, normalise_url
from services.crm.adapters.sql_tables import metadata


def database_kinds() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


@contextmanager
def fresh_database(kind: str, directory: Path, *, create: bool = True) -> Iterator[str]:
    """A URL of an empty database of ``kind``: a new SQLite file, or a new
    PostgreSQL schema (dropped afterwards) so concurrent runs never collide."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / ('crm-' + uuid.uuid4().hex[:8] + '.db')}"
        if create:
            engine = make_engine(url)
            metadata.create_all(engine)
            engine.dispose()
        yield url
        return
    base = normalise_url(os.environ["TEST_DATABASE_URL"])
    schema = "crm_test_" + uuid.uuid4().hex[:12]
    admin = make_engine(base, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        if create:
            engine = make_engine(url, pool_size=1)
            metadata.create_all(engine)
            engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
