"""Database outages on resolve's hot path: PostgreSQL backends are ended under the
store. Collected only where TEST_DATABASE_URL points at a server (as in CI; see
conftest.py), since SQLite has no server to lose."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.app import create_app
from services.crm.errors import StoreUnavailable
from services.crm.testing import fresh_database
from shared.config import Settings
from tests.integration.crm.test_crm_store_sql import PHONE, Holders, core, fast, seed


@pytest.fixture
def pg_store(tmp_path: Path) -> Iterator[SqlStore]:
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        read_engine = make_engine(url, pool_size=2, autocommit=True)
        yield SqlStore(engine, read_engine=read_engine)
        read_engine.dispose()
        engine.dispose()


@pytest.fixture
def pg_client(tmp_path: Path, make_settings: Callable[..., Settings]) -> Iterator[FlaskClient]:
    with fresh_database("postgresql", tmp_path, create=False) as url:
        app = create_app(make_settings("crm", DATABASE_URL=url))
        yield app.test_client()
        app.extensions["sb"]["store"].dispose()


def terminate(pids: list[int]) -> None:
    """End these backends (ours only: the server may be shared) and wait until gone."""
    # The libpq form of the URL: SQLAlchemy's driver suffix (postgresql+psycopg) is not one.
    url = os.environ["TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def pooled_pids(engine: Engine, n: int) -> list[int]:
    """Check out ``n`` pooled connections at once (so ``n`` exist) and give them back."""
    conns = [engine.raw_connection() for _ in range(n)]
    pids = [c.driver_connection.info.backend_pid for c in conns]  # type: ignore[union-attr]
    for c in conns:
        c.close()
    return pids


@pytest.mark.parametrize("holders", [fast, core], ids=["fast", "core"])
def test_a_lost_server_is_store_unavailable_then_the_next_read_reconnects(
    pg_store: SqlStore, holders: Holders, caplog: pytest.LogCaptureFixture
) -> None:
    store = pg_store
    caplog.set_level(logging.ERROR, logger="sqlalchemy.pool")
    seed(store)
    engine = store.read_engine
    terminate(pooled_pids(engine, 2))  # every pooled connection is dead now
    with pytest.raises(StoreUnavailable):
        holders(store, [PHONE])
    # The first failure retires every connection as old as the dead one: the next
    # read gets a fresh connection, not the other dead one.
    assert holders(store, [PHONE])
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The dead connection was discarded, not handed back to the pool to fail its reset.
    assert [r.getMessage() for r in caplog.records] == []


def test_a_database_outage_on_resolve_is_the_503_problem_document(
    pg_client: FlaskClient, headers: Callable[[str], dict[str, str]]
) -> None:
    client = pg_client
    store = client.application.extensions["sb"]["store"]
    body = {"identifiers": [{"type": "phone", "value": "13800138000"}], "create": True}
    created = client.post("/v1/profiles/resolve", json=body, headers=headers("channel"))
    assert created.status_code == 201
    found = client.post("/v1/profiles/resolve", json=body, headers=headers("channel"))
    assert found.status_code == 200
    terminate(pooled_pids(store.read_engine, 1))
    down = client.post("/v1/profiles/resolve", json=body, headers=headers("channel"))
    assert down.status_code == 503 and down.mimetype == "application/problem+json"
    assert down.headers["Retry-After"] == "1"
    assert down.json["detail"] == "the database is unavailable"
    again = client.post("/v1/profiles/resolve", json=body, headers=headers("channel"))
    assert again.status_code == 200 and again.json == found.json
