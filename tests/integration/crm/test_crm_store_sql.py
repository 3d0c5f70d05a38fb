"""The store's one-read ``holders`` (resolve's hot path): on PostgreSQL it bypasses
SQLAlchemy's execution layer, so it must give the same rows, the same errors and
leave the pool as the Core path (``reader()``) does."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_engine import make_engine, normalise_url
from services.crm.adapters.sql_store import SqlStore
from services.crm.domain.identifiers import Identifier
from services.crm.ports import StoreUnavailable
from services.crm.service import CrmService

PHONE = Identifier("phone", "+8613800138000")
ATTRIBUTES = {"vip": True, "score": 1.5, "tags": ["a", "ü"], "note": None, "nested": {"n": 1}}

Holders = Callable[[SqlStore, list[Identifier]], dict[str, dict[str, Any]]]


def fast(store: SqlStore, wanted: list[Identifier]) -> dict[str, dict[str, Any]]:
    return store.holders(wanted)


def core(store: SqlStore, wanted: list[Identifier]) -> dict[str, dict[str, Any]]:
    with store.reader() as tx:
        return tx.holders(wanted)


@pytest.fixture
def store(db_url: str, engine: Engine) -> Iterator[SqlStore]:
    """Wired as bootstrap does: reads on an AUTOCOMMIT engine on PostgreSQL."""
    read_engine = None
    if engine.dialect.name == "postgresql":
        read_engine = make_engine(db_url, pool_size=2, autocommit=True)
    yield SqlStore(engine, read_engine=read_engine)
    if read_engine is not None:
        read_engine.dispose()


def seed(store: SqlStore) -> str:
    crm = CrmService(store)
    profile, _ = crm.resolve(
        [{"type": "phone", "value": "13800138000"}, {"type": "email", "value": "a@b.cn"}],
        create=True,
        fields={"name": "Li Wei", "language": "zh", "attributes": ATTRIBUTES},
    )
    return str(profile["id"])


def only_postgresql(store: SqlStore) -> None:
    if store.read_engine.dialect.name != "postgresql":
        pytest.skip("the outage is simulated by ending PostgreSQL backends")


def terminate(pids: list[int]) -> None:
    """End these backends (ours only: the server may be shared) and wait until gone."""
    with psycopg.connect(os.environ["TEST_DATABASE_URL"], autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def pooled_pids(engine: Engine, n: int) -> list[int]:
    """Check out ``n`` pooled connections at once (so ``n`` exist) and give them back."""
    conns = [engine.raw_connection() for _ in range(n)]
    pids = [c.driver_connection.info.backend_pid for c in conns]  # type: ignore[union-attr]
    for c in conns:
        c.close()
    return pids


def test_the_fast_read_returns_exactly_what_the_core_read_returns(store: SqlStore) -> None:
    profile_id = seed(store)
    for wanted in ([PHONE], [Identifier("email", "a@b.cn")], [PHONE, Identifier("x", "y")]):
        got = fast(store, wanted)
        assert got == core(store, wanted)
        assert list(got) == [profile_id]
    held = fast(store, [PHONE])[profile_id]
    row = held["row"]
    assert row["attributes"] == ATTRIBUTES and row["name"] == "Li Wei"
    assert held["identifiers"] == [PHONE, Identifier("email", "a@b.cn")]
    # Same Python types as the Core path: aware UTC datetimes, a dict for JSON.
    for key in ("created_at", "updated_at"):
        assert isinstance(row[key], datetime) and row[key].tzinfo is UTC
    assert [type(v) for v in row.values()] == [
        type(v) for v in core(store, [PHONE])[profile_id]["row"].values()
    ]
    assert fast(store, [Identifier("phone", "+8613900139000")]) == {}
    assert store.read_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_on_postgresql_one_identifier_skips_the_core_execution_layer(store: SqlStore) -> None:
    seed(store)
    executed: list[str] = []
    event.listen(store.read_engine, "before_cursor_execute", lambda *a: executed.append(a[2]))
    assert fast(store, [PHONE])
    expected = [] if store.read_engine.dialect.name == "postgresql" else ["SELECT"]
    assert [sql.split()[0] for sql in executed] == expected


@pytest.mark.parametrize("holders", [fast, core], ids=["fast", "core"])
def test_a_lost_server_is_store_unavailable_then_the_next_read_reconnects(
    store: SqlStore, holders: Holders, caplog: pytest.LogCaptureFixture
) -> None:
    only_postgresql(store)
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


def test_an_unreachable_server_is_store_unavailable() -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    engine = make_engine(normalise_url(url), pool_size=1, autocommit=True)
    store = SqlStore(engine)
    try:
        for holders in (fast, core):
            with pytest.raises(StoreUnavailable):
                holders(store, [PHONE])
    finally:
        engine.dispose()


def test_a_database_outage_on_resolve_is_the_503_problem_document(
    client: FlaskClient, headers: Callable[[str], dict[str, str]]
) -> None:
    store = client.application.extensions["sb"]["store"]
    only_postgresql(store)
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
