"""The CRM's SQL statements for profiles and their identifiers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, literal, or_, select, tuple_, update
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_rows import NOT_AN_ID, SqlArea, row_of
from services.crm.domain.identifiers import Identifier
from services.crm.ports import Holder

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
HOLDER_OF_ONE = _holders_query(
    and_(_HELD.c.type == bindparam("kind"), _HELD.c.value == bindparam("value"))
)


# Built once: the lookups every request makes (statement building is not free).
_PROFILE_BY_ID = select(t.profiles).where(t.profiles.c.id == bindparam("profile_id"))
_IDENTIFIERS_OF_ONE = (
    select(t.identifiers)
    .where(t.identifiers.c.profile_id == bindparam("profile_id"))
    .order_by(t.identifiers.c.id)
)


@dataclass(frozen=True)
class Compiled:
    """A SELECT compiled once for one dialect, to run on the bare DBAPI connection:
    its SQL text, its result keys and SQLAlchemy's own result processors, so rows come
    out exactly as ``Connection.execute`` would give them."""

    sql: str
    keys: tuple[str, ...]
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]  # (key, processor) where any

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> Compiled:
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


def by_holder(rows: Iterable[dict[str, Any]]) -> dict[str, Holder]:
    """Rows of ``_holders_query`` -> profile id -> its row and all its identifiers."""
    found: dict[str, tuple[dict[str, Any], list[Identifier]]] = {}
    for m in rows:
        kind, value = m.pop("i_type"), m.pop("i_value")
        found.setdefault(m["id"], (m, []))[1].append(Identifier(kind, value))
    return {pid: Holder(row, tuple(held)) for pid, (row, held) in found.items()}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlProfiles(SqlArea):
    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        if NOT_AN_ID.search(profile_id):
            return None
        row = self.conn.execute(_PROFILE_BY_ID, {"profile_id": profile_id}).first()
        return row_of(row) if row else None

    def insert_profile(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.profiles).values(**row))

    def update_profile(self, profile_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.profiles).where(t.profiles.c.id == profile_id).values(**values))

    def lock_profile(self, profile_id: str) -> None:
        """Serialise writers of one profile: a row lock on PostgreSQL, the write lock on SQLite."""
        if NOT_AN_ID.search(profile_id):
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
        return [row_of(r) for r in rows]

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

    def holders(self, wanted: Sequence[Identifier]) -> dict[str, Holder]:
        """The profiles holding any of ``wanted``, each with all its identifiers:
        one query for the hot path of resolve."""
        if not wanted:
            return {}
        if len(wanted) == 1:
            params = {"kind": wanted[0].type, "value": wanted[0].value}
            rows = self.conn.execute(HOLDER_OF_ONE, params).all()
        else:
            pairs = [(i.type, i.value) for i in wanted]
            rows = self.conn.execute(
                _holders_query(tuple_(_HELD.c.type, _HELD.c.value).in_(pairs))
            ).all()
        return by_holder(dict(r._mapping) for r in rows)

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
            return [row_of(r) for r in self.conn.execute(_IDENTIFIERS_OF_ONE, params).all()]
        rows = self.conn.execute(
            select(t.identifiers)
            .where(t.identifiers.c.profile_id.in_(list(profile_ids)))
            .order_by(t.identifiers.c.id)
        ).all()
        return [row_of(r) for r in rows]
