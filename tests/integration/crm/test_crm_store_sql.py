"""The store's one-read ``holders`` (resolve's hot path): on PostgreSQL it bypasses
SQLAlchemy's execution layer, so it must give the same rows, the same errors and
leave the pool as the Core path (``reader()``) does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_engine import make_engine, normalise_url
from services.crm.adapters.sql_store import SqlStore
from services.crm.domain.identifiers import Identifier
from services.crm.errors import StoreUnavailable
from services.crm.ports import Holder
from services.crm.service import CrmService

PHONE = Identifier("phone", "+8613800138000")
ATTRIBUTES = {"vip": True, "score": 1.5, "tags": ["a", "ü"], "note": None, "nested": {"n": 1}}

Holders = Callable[[SqlStore, list[Identifier]], dict[str, Holder]]


def fast(store: SqlStore, wanted: list[Identifier]) -> dict[str, Holder]:
    return store.holders(wanted)


def core(store: SqlStore, wanted: list[Identifier]) -> dict[str, Holder]:
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


def test_the_fast_read_returns_exactly_what_the_core_read_returns(store: SqlStore) -> None:
    profile_id = seed(store)
    for wanted in ([PHONE], [Identifier("email", "a@b.cn")], [PHONE, Identifier("x", "y")]):
        got = fast(store, wanted)
        assert got == core(store, wanted)
        assert list(got) == [profile_id]
    held = fast(store, [PHONE])[profile_id]
    row = held.row
    assert row["attributes"] == ATTRIBUTES and row["name"] == "Li Wei"
    assert held.identifiers == (PHONE, Identifier("email", "a@b.cn"))
    # Same Python types as the Core path: aware UTC datetimes, a dict for JSON.
    for key in ("created_at", "updated_at"):
        assert isinstance(row[key], datetime) and row[key].tzinfo is UTC
    assert [type(v) for v in row.values()] == [
        type(v) for v in core(store, [PHONE])[profile_id].row.values()
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
