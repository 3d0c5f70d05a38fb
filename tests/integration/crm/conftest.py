"""A real database per test: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.service import CrmService
from services.crm.testing import database_kinds, fresh_database


@pytest.fixture(params=database_kinds())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def crm(engine: Engine) -> CrmService:
    return CrmService(SqlStore(engine))
