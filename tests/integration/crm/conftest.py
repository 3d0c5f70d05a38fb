"""A real database per test: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.app import create_app
from services.crm.service import CrmService
from services.crm.testing import database_kinds, fresh_database
from shared.config import Settings

# Ends PostgreSQL backends to simulate outages: only where a server is configured.
collect_ignore = (
    []
    if os.environ.get("TEST_DATABASE_URL")
    else ["test_crm_postgres_outages.py", "test_crm_postgres_migrations.py"]
)


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


@pytest.fixture(params=database_kinds())
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables: the app migrates it itself (dev mode)."""
    with fresh_database(request.param, tmp_path, create=False) as url:
        yield url


@pytest.fixture
def app(make_settings: Callable[..., Settings], empty_db_url: str) -> Iterator[Flask]:
    application = create_app(make_settings("crm", DATABASE_URL=empty_db_url))
    yield application
    application.extensions["sb"]["store"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
