"""The CRM's SQL store: one ``SqlTx`` per use case, committed with its outbox rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from services.crm.adapters import sql_lookup
from services.crm.adapters import sql_tables as t
from services.crm.domain.identifiers import Identifier
from services.crm.ports import Contention, StoreUnavailable
from shared.events import STREAMS, Event
from shared.sql_outbox import add_to_outbox
from shared.validation import UNPRINTABLE

if TYPE_CHECKING:
    import psycopg

# Tables that hold rows of one profile, by the name the service uses.
OWNED: dict[str, Table] = {
    "identifiers": t.identifiers,
    "interactions": t.interactions,
    "cases": t.cases,
    "timeline": t.timeline,
}
CRM_STREAM = STREAMS["crm"]


_HELD = t.identifiers.alias("held")


def _holders_query(condition: Any) -> Any:
    owners = select(_HELD.c.profile_id).where(condition).scalar_subquery()
    return (
        select(
            t.profiles,
            t.identifiers.c.type.label("i_type"),
            t.identifiers.c.value.label("i_value"),
        )
        .join(t.identifiers, t.identifiers.c.profile_id == t.profiles.c.id)
        .where(t.profiles.c.id.in_(owners))
        .order_by(t.profiles.c.id, t.identifiers.c.id)
    )


# Built once: resolve by a single identifier is the hottest query of the service.
_HOLDER_OF_ONE = _holders_query(
    and_(_HELD.c.type == bindparam("kind"), _HELD.c.value == bindparam("value"))
)


# Built once: the lookups every request makes (statement building is not free).
_PROFILE_BY_ID = select(t.profiles).where(t.profiles.c.id == bindparam("profile_id"))
_IDENTIFIERS_OF_ONE = (
    select(t.identifiers)
    .where(t.identifiers.c.profile_id == bindparam("profile_id"))
    .order_by(t.identifiers.c.id)
)
_CASE_BY_ID = select(t.cases).where(t.cases.c.id == bindparam("case_id"))
_CASE_BY_NUMBER = select(t.cases).where(t.cases.c.case_number == bindparam("case_number"))


@dataclass(frozen=True)
class _Compiled:
    """A SELECT compiled once for one dialect, to run on the bare DBAPI connection:
    its SQL text, its result keys and SQLAlchemy's own result processors, so rows come
    out exactly as ``Connection.execute`` would give them."""

    sql: str
    keys: tuple[str, ...]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]  # (key, processor) where any

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        # Parameters are passed to the driver as given: refuse a statement whose binds
        # SQLAlchemy would convert first, rather than silently skip the conversion.
        for bind in compiled.binds.values():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"bind {bind.key!r} needs a bind processor")
        columns = statement.selected_columns
        processors = []
        for key, column in zip(columns.keys(), columns, strict=True):
            # The driver's type code is not known here; no processor of these column
            # types uses it on PostgreSQL (the tests compare both paths row for row).
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                processors.append((key, process))
        return cls(compiled.string, tuple(columns.keys()), tuple(processors))

    def rows(self, values: Iterable[Sequence[Any]]) -> Iterator[dict[str, Any]]:
        keys, processors = self.keys, self.processors
        for row in values:
            mapping = dict(zip(keys, row, strict=True))
            for key, process in processors:
                mapping[key] = process(mapping[key])
            yield mapping


def _by_holder(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows of ``_holders_query`` -> profile id -> {"row": profile, "identifiers": [...]}."""
    found: dict[str, dict[str, Any]] = {}
    for m in rows:
        kind, value = m.pop("i_type"), m.pop("i_value")
        entry = found.setdefault(m["id"], {"row": m, "identifiers": []})
        entry["identifiers"].append(Identifier(kind, value))
    return found


def _row(mapping: Any) -> dict[str, Any]:
    return dict(mapping._mapping)


# The service mints ids ("p-<hex>", "c-<hex>") without control characters; one in a
# key (a path id) names no row, and must not reach the database: PostgreSQL refuses a
# NUL in text outright, and neither driver can encode a lone surrogate.
_NOT_AN_ID = UNPRINTABLE


def _contention(exc: DBAPIError) -> Contention:
    """Named by the constraint or the error's class, never by the driver's message:
    PostgreSQL's names the duplicate key's value (a phone, an email), and a retried-out
    Contention ends in a log. Raised ``from None`` so no traceback carries the message."""
    diag = getattr(exc.orig, "diag", None)
    return Contention(getattr(diag, "constraint_name", None) or type(exc.orig).__name__)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlTx:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- profiles -----------------------------------------------------------------
    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        if _NOT_AN_ID.search(profile_id):
            return None
        row = self.conn.execute(_PROFILE_BY_ID, {"profile_id": profile_id}).first()
        return _row(row) if row else None

    def insert_profile(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.profiles).values(**row))

    def update_profile(self, profile_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.profiles).where(t.profiles.c.id == profile_id).values(**values))

    def lock_profile(self, profile_id: str) -> None:
        """Serialise writers of one profile: a row lock on PostgreSQL, the write lock on SQLite."""
        if _NOT_AN_ID.search(profile_id):
            return  # no such row to lock
        self.conn.execute(
            update(t.profiles)
            .where(t.profiles.c.id == profile_id)
            .values(updated_at=t.profiles.c.updated_at)
        )

    def search_profiles(
        self,
        *,
        name_prefix: str | None,
        identifiers: Sequence[Identifier],
        tier: str | None,
        after: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        query = select(t.profiles).where(t.profiles.c.status == "active")
        matches = []
        if name_prefix:
            by_name: ColumnElement[bool] = t.profiles.c.name_key.like(
                _escape_like(name_prefix) + "%", escape="\\"
            )
            if self.conn.dialect.name == "sqlite":
                # SQLite's LIKE ignores case and so no index; the range (exact under
                # its binary collation) lets the index find the rows, LIKE confirms.
                by_name = and_(
                    t.profiles.c.name_key >= name_prefix,
                    t.profiles.c.name_key < name_prefix + "\U0010ffff",
                    by_name,
                )
            matches.append(by_name)
        if identifiers:
            pairs = [(i.type, i.value) for i in identifiers]
            owners = select(t.identifiers.c.profile_id).where(
                tuple_(t.identifiers.c.type, t.identifiers.c.value).in_(pairs)
            )
            matches.append(t.profiles.c.id.in_(owners))
        if name_prefix is not None or identifiers:
            query = query.where(or_(*matches)) if matches else query.where(literal(False))
        if tier:
            query = query.where(t.profiles.c.tier == tier)
        if after:
            query = query.where(t.profiles.c.id > after)
        rows = self.conn.execute(query.order_by(t.profiles.c.id).limit(limit)).all()
        return [_row(r) for r in rows]

    def profiles_merged_into(self, profile_id: str) -> list[str]:
        """Every tombstone whose chain ends at this profile."""
        found: list[str] = []
        frontier = [profile_id]
        while frontier:
            rows = self.conn.execute(
                select(t.profiles.c.id).where(t.profiles.c.merged_into.in_(frontier))
            ).all()
            frontier = [r.id for r in rows if r.id not in found]
            found += frontier
        return found

    def delete_profiles(self, profile_ids: Sequence[str]) -> None:
        self.conn.execute(delete(t.profiles).where(t.profiles.c.id.in_(list(profile_ids))))

    # -- identifiers --------------------------------------------------------------
    def owners(self, wanted: Sequence[Identifier]) -> dict[Identifier, str]:
        if not wanted:
            return {}
        pairs = [(i.type, i.value) for i in wanted]
        rows = self.conn.execute(
            select(t.identifiers.c.type, t.identifiers.c.value, t.identifiers.c.profile_id).where(
                tuple_(t.identifiers.c.type, t.identifiers.c.value).in_(pairs)
            )
        ).all()
        return {Identifier(r.type, r.value): r.profile_id for r in rows}

    def holders(self, wanted: Sequence[Identifier]) -> dict[str, dict[str, Any]]:
        """The profiles holding any of ``wanted``, each with all its identifiers:
        one query for the hot path of resolve."""
        if not wanted:
            return {}
        if len(wanted) == 1:
            params = {"kind": wanted[0].type, "value": wanted[0].value}
            rows = self.conn.execute(_HOLDER_OF_ONE, params).all()
        else:
            pairs = [(i.type, i.value) for i in wanted]
            rows = self.conn.execute(
                _holders_query(tuple_(_HELD.c.type, _HELD.c.value).in_(pairs))
            ).all()
        return _by_holder(dict(r._mapping) for r in rows)

    def insert_identifiers(self, profile_id: str, wanted: Sequence[Identifier]) -> None:
        if not wanted:
            return
        now = datetime.now().astimezone()
        self.conn.execute(
            insert(t.identifiers),
            [
                {"profile_id": profile_id, "type": i.type, "value": i.value, "created_at": now}
                for i in wanted
            ],
        )

    def identifiers_of(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        if len(profile_ids) == 1:
            params = {"profile_id": profile_ids[0]}
            return [_row(r) for r in self.conn.execute(_IDENTIFIERS_OF_ONE, params).all()]
        rows = self.conn.execute(
            select(t.identifiers)
            .where(t.identifiers.c.profile_id.in_(list(profile_ids)))
            .order_by(t.identifiers.c.id)
        ).all()
        return [_row(r) for r in rows]

    # -- generic, by table name ---------------------------------------------------
    def ids_of(self, table: str, profile_id: str) -> list[Any]:
        tbl = OWNED[table]
        rows = self.conn.execute(select(tbl.c.id).where(tbl.c.profile_id == profile_id)).all()
        return [r.id for r in rows]

    def move(self, table: str, ids: Sequence[Any], to_profile: str, *, from_profile: str) -> int:
        if not ids:
            return 0
        tbl = OWNED[table]
        moved = 0
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            result = self.conn.execute(
                update(tbl)
                .where(and_(tbl.c.id.in_(chunk), tbl.c.profile_id == from_profile))
                .values(profile_id=to_profile)
            )
            moved += result.rowcount
        return moved

    def rows_of(self, table: str, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        tbl = OWNED[table]
        order = (
            tbl.c.at if "at" in tbl.c else tbl.c.created_at if "created_at" in tbl.c else tbl.c.id
        )
        rows = self.conn.execute(
            select(tbl).where(tbl.c.profile_id.in_(list(profile_ids))).order_by(order, tbl.c.id)
        ).all()
        return [_row(r) for r in rows]

    def delete_of(self, table: str, profile_ids: Sequence[str]) -> int:
        tbl = OWNED[table]
        result = self.conn.execute(delete(tbl).where(tbl.c.profile_id.in_(list(profile_ids))))
        return result.rowcount

    # -- interactions and timeline ------------------------------------------------
    def insert_interaction(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.interactions).values(**row))

    def add_timeline(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.timeline).values(**row))

    def timeline(
        self, profile_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[dict[str, Any]]:
        query = select(t.timeline).where(t.timeline.c.profile_id == profile_id)
        if before is not None:
            at, row_id = before
            query = query.where(
                or_(t.timeline.c.at < at, and_(t.timeline.c.at == at, t.timeline.c.id < row_id))
            )
        query = query.order_by(t.timeline.c.at.desc(), t.timeline.c.id.desc()).limit(limit)
        return [_row(r) for r in self.conn.execute(query).all()]

    # -- cases --------------------------------------------------------------------
    def next_sequence(self, name: str) -> int:
        """Atomically the next number of a named counter (the UPDATE takes the lock)."""
        bumped = self.conn.execute(
            update(t.counters)
            .where(t.counters.c.name == name)
            .values(value=t.counters.c.value + 1)
            .returning(t.counters.c.value)
        ).first()
        if bumped is not None:
            return int(bumped.value)
        # First use: a concurrent first insert fails on the primary key and the
        # use case is retried, then takes the UPDATE path above.
        self.conn.execute(insert(t.counters).values(name=name, value=1))
        return 1

    def lock_case(self, case_id: str) -> None:
        if _NOT_AN_ID.search(case_id):
            return  # no such row to lock; get_case then finds none
        self.conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(updated_at=t.cases.c.updated_at)
        )

    def insert_case(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.cases).values(**row))

    def get_case(self, case_id: str) -> dict[str, Any] | None:
        if _NOT_AN_ID.search(case_id):
            return None
        row = self.conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
        return _row(row) if row else None

    def get_case_by_number(self, case_number: str) -> dict[str, Any] | None:
        row = self.conn.execute(_CASE_BY_NUMBER, {"case_number": case_number}).first()
        return _row(row) if row else None

    def case_for_lookup(self, case_number: str, phone: str) -> dict[str, Any]:
        return sql_lookup.case_for_lookup(self.conn, case_number, phone)

    def open_cases_of(self, profile_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.cases).where(
                t.cases.c.profile_id == profile_id,
                t.cases.c.status.in_(("new", "open", "pending_customer")),
            )
        ).all()
        return [_row(r) for r in rows]

    def update_case(self, case_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.cases).where(t.cases.c.id == case_id).values(**values))

    def anonymise_cases(self, profile_ids: Sequence[str]) -> int:
        result = self.conn.execute(
            update(t.cases)
            .where(t.cases.c.profile_id.in_(list(profile_ids)))
            .values(profile_id=None, subject=None, description=None, history=[])
        )
        return result.rowcount

    # -- merges -------------------------------------------------------------------
    def insert_merge(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.merges).values(**row))

    def get_merge(self, merge_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.merges).where(t.merges.c.id == merge_id)).first()
        return _row(row) if row else None

    def update_merge(self, merge_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.merges).where(t.merges.c.id == merge_id).values(**values))

    def merges_of(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = list(profile_ids)
        rows = self.conn.execute(
            select(t.merges)
            .where(or_(t.merges.c.survivor_id.in_(ids), t.merges.c.source_id.in_(ids)))
            .order_by(t.merges.c.at)
        ).all()
        return [_row(r) for r in rows]

    def delete_merges_of(self, profile_ids: Sequence[str]) -> None:
        ids = list(profile_ids)
        self.conn.execute(
            delete(t.merges).where(
                or_(t.merges.c.survivor_id.in_(ids), t.merges.c.source_id.in_(ids))
            )
        )

    def record_candidate(self, a: str, b: str, types: Sequence[str], now: datetime) -> None:
        a, b = sorted((a, b))
        pair = and_(t.merge_candidates.c.profile_a == a, t.merge_candidates.c.profile_b == b)
        bumped = self.conn.execute(
            update(t.merge_candidates)
            .where(pair)
            .values(
                last_seen=now,
                occurrences=t.merge_candidates.c.occurrences + 1,
                identifier_types=sorted(set(types)),
            )
        )
        if bumped.rowcount == 0:
            self.conn.execute(
                insert(t.merge_candidates).values(
                    profile_a=a,
                    profile_b=b,
                    identifier_types=sorted(set(types)),
                    first_seen=now,
                    last_seen=now,
                    occurrences=1,
                )
            )

    def candidates(self, *, after: int | None, limit: int) -> list[dict[str, Any]]:
        pa = t.profiles.alias("pa")
        pb = t.profiles.alias("pb")
        query = (
            select(t.merge_candidates)
            .join(pa, pa.c.id == t.merge_candidates.c.profile_a)
            .join(pb, pb.c.id == t.merge_candidates.c.profile_b)
            .where(pa.c.status == "active", pb.c.status == "active")
        )
        if after is not None:
            query = query.where(t.merge_candidates.c.id > after)
        rows = self.conn.execute(query.order_by(t.merge_candidates.c.id).limit(limit)).all()
        return [_row(r) for r in rows]

    def delete_candidates_of(self, profile_ids: Sequence[str]) -> None:
        ids = list(profile_ids)
        self.conn.execute(
            delete(t.merge_candidates).where(
                or_(
                    t.merge_candidates.c.profile_a.in_(ids),
                    t.merge_candidates.c.profile_b.in_(ids),
                )
            )
        )

    # -- data protection ----------------------------------------------------------
    def suppress(self, digests: Sequence[str], until: datetime) -> None:
        for digest in digests:
            done = self.conn.execute(
                update(t.suppressions).where(t.suppressions.c.digest == digest).values(until=until)
            )
            if done.rowcount == 0:
                self.conn.execute(insert(t.suppressions).values(digest=digest, until=until))

    def suppressed(self, digests: Sequence[str], now: datetime) -> set[str]:
        """The ``digests`` still suppressed at ``now``."""
        if not digests:
            return set()
        rows = self.conn.execute(
            select(t.suppressions.c.digest).where(
                t.suppressions.c.digest.in_(list(digests)), t.suppressions.c.until > now
            )
        ).all()
        return {r.digest for r in rows}

    # -- events -------------------------------------------------------------------
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
        self._holder_of_one: _Compiled | None = None

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

    def holders(self, wanted: Sequence[Identifier]) -> dict[str, dict[str, Any]]:
        """``SqlTx.holders`` as one read outside any transaction (resolve's hot path)."""
        if len(wanted) != 1 or not self._raw:
            with self.reader() as tx:
                return tx.holders(wanted)
        return _by_holder(self._holder_of_one_raw(wanted[0]))

    def _holder_of_one_raw(self, wanted: Identifier) -> list[dict[str, Any]]:
        """``_HOLDER_OF_ONE`` straight on psycopg: the hottest query of the service spends
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
                self._holder_of_one = _Compiled.of(_HOLDER_OF_ONE, dialect)
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
