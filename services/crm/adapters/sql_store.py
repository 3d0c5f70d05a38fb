"""The CRM's SQL store: one ``SqlTx`` per use case, committed with its outbox rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_cases import SqlCases
from services.crm.adapters.sql_merges import SqlMerges, SqlOwnedRows, SqlPrivacy
from services.crm.adapters.sql_profiles import HOLDER_OF_ONE, Compiled, SqlProfiles, by_holder
from services.crm.adapters.sql_rows import SqlArea
from services.crm.domain.identifiers import Identifier
from services.crm.errors import Contention, StoreUnavailable
from services.crm.ports import Holder
from shared.events import STREAMS, Event
from shared.sql_outbox import add_to_outbox

if TYPE_CHECKING:
    import psycopg

CRM_STREAM = STREAMS["crm"]


def _contention(exc: DBAPIError) -> Contention:
    """Named by the constraint or the error's class, never by the driver's message:
    PostgreSQL's names the duplicate key's value (a phone, an email), and a retried-out
    Contention ends in a log. Raised ``from None`` so no traceback carries the message."""
    diag = getattr(exc.orig, "diag", None)
    return Contention(getattr(diag, "constraint_name", None) or type(exc.orig).__name__)


class SqlEvents(SqlArea):
    def emit(self, event: Event) -> None:
        add_to_outbox(self.conn, t.outbox, CRM_STREAM, event)

    def prune_inbox(self, before: datetime) -> int:
        """Forget consumed event ids older than any redelivery could be."""
        return self.conn.execute(delete(t.inbox).where(t.inbox.c.processed_at < before)).rowcount

    def seen_event(self, event_id: str, now: datetime) -> bool:
        """Record a consumed event id; True if it was already there (a duplicate)."""
        exists = self.conn.execute(
            select(t.inbox.c.event_id).where(t.inbox.c.event_id == event_id)
        ).first()
        if exists:
            return True
        self.conn.execute(insert(t.inbox).values(event_id=event_id, processed_at=now))
        return False


class SqlTx(SqlProfiles, SqlOwnedRows, SqlCases, SqlMerges, SqlPrivacy, SqlEvents):
    """Every area's statements on one connection: the store's ``Tx``."""


_CURSOR = "sb_cursor"  # key of a pooled connection's reusable psycopg cursor


class SqlStore:
    def __init__(self, engine: Engine, *, read_engine: Engine | None = None) -> None:
        self.engine = engine
        # SQLite: the same engine (pysqlite never BEGINs for a SELECT). PostgreSQL:
        # an autocommit engine, so a read costs one round trip, not three.
        self.read_engine = read_engine or engine
        # PostgreSQL: ``holders`` of one identifier runs on the bare psycopg connection
        # (compiled on first use, when the dialect has met the server).
        self._raw = self.read_engine.dialect.name == "postgresql"
        self._holder_of_one: Compiled | None = None

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        try:
            with self.engine.begin() as conn:
                yield SqlTx(conn)
        except IntegrityError as exc:
            raise _contention(exc) from None
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "deadlock" in str(exc.orig):
                raise _contention(exc) from None
            # A lost connection (database restarted): the pool is already invalidated.
            raise StoreUnavailable(type(exc.orig).__name__) from exc

    @contextmanager
    def reader(self) -> Iterator[SqlTx]:
        """Reads only, no BEGIN/COMMIT round trips (autocommit): for hot read paths."""
        try:
            with self.read_engine.connect() as conn:
                yield SqlTx(conn)
        except OperationalError as exc:
            raise StoreUnavailable(type(exc.orig).__name__) from exc

    def holders(self, wanted: Sequence[Identifier]) -> dict[str, Holder]:
        """``SqlTx.holders`` as one read outside any transaction (resolve's hot path)."""
        if len(wanted) != 1 or not self._raw:
            with self.reader() as tx:
                return tx.holders(wanted)
        return by_holder(self._holder_of_one_raw(wanted[0]))

    def _holder_of_one_raw(self, wanted: Identifier) -> list[dict[str, Any]]:
        """``HOLDER_OF_ONE`` straight on psycopg: the hottest query of the service spends
        more CPU in SQLAlchemy's Connection and result layers than in the driver. Same
        pool, same AUTOCOMMIT connection, same errors as ``reader()``; rows are built
        with SQLAlchemy's result processors, so they equal what the Core path returns."""
        dialect = self.read_engine.dialect
        dbapi = dialect.loaded_dbapi
        try:
            # The pool's own checkout: the driver's exception, not SQLAlchemy's wrapper.
            pooled = self.read_engine.raw_connection()
        except dbapi.OperationalError as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        try:
            if self._holder_of_one is None:
                self._holder_of_one = Compiled.of(HOLDER_OF_ONE, dialect)
            query = self._holder_of_one
            params = {"kind": wanted.type, "value": wanted.value}
            # One cursor per connection, kept as long as the connection (the pool clears
            # ``info`` when it replaces one): building a cursor cost as much as a third
            # of the query. prepare=True: parsed and planned once per connection.
            cursor = pooled.info.get(_CURSOR)
            if cursor is None:
                driver = cast("psycopg.Connection[tuple[Any, ...]]", pooled.driver_connection)
                cursor = pooled.info[_CURSOR] = driver.cursor()
            values = cursor.execute(query.sql, params, prepare=True).fetchall()
        except BaseException as exc:
            # Never hand a connection in an unknown state back to the pool (an
            # interrupted wait leaves a result pending). On a lost server, drop every
            # connection as old as this one, as SQLAlchemy's Connection does.
            if isinstance(exc, dbapi.Error) and dialect.is_disconnect(
                exc, pooled.dbapi_connection, None
            ):
                self.read_engine.pool._invalidate(pooled, exc)  # invalidates this one too
            else:
                pooled.invalidate(exc)
            pooled.close()
            if isinstance(exc, dbapi.OperationalError):
                raise StoreUnavailable(type(exc).__name__) from exc
            raise
        pooled.close()
        return list(query.rows(values))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(select(literal(1)))
