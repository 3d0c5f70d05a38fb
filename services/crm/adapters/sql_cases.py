"""The CRM's SQL statements for cases, interactions and the timeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update

from services.crm.adapters import sql_lookup
from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_rows import NOT_AN_ID, SqlArea, row_of
from services.crm.ports import LookupProbe

_CASE_BY_ID = select(t.cases).where(t.cases.c.id == bindparam("case_id"))
_CASE_BY_NUMBER = select(t.cases).where(t.cases.c.case_number == bindparam("case_number"))


class SqlCases(SqlArea):
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
        return [row_of(r) for r in self.conn.execute(query).all()]

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
        if NOT_AN_ID.search(case_id):
            return  # no such row to lock; get_case then finds none
        self.conn.execute(
            update(t.cases).where(t.cases.c.id == case_id).values(updated_at=t.cases.c.updated_at)
        )

    def insert_case(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.cases).values(**row))

    def get_case(self, case_id: str) -> dict[str, Any] | None:
        if NOT_AN_ID.search(case_id):
            return None
        row = self.conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
        return row_of(row) if row else None

    def get_case_by_number(self, case_number: str) -> dict[str, Any] | None:
        row = self.conn.execute(_CASE_BY_NUMBER, {"case_number": case_number}).first()
        return row_of(row) if row else None

    def case_for_lookup(self, case_number: str, phone: str) -> LookupProbe:
        return sql_lookup.case_for_lookup(self.conn, case_number, phone)

    def open_cases_of(self, profile_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(t.cases).where(
                t.cases.c.profile_id == profile_id,
                t.cases.c.status.in_(("new", "open", "pending_customer")),
            )
        ).all()
        return [row_of(r) for r in rows]

    def update_case(self, case_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.cases).where(t.cases.c.id == case_id).values(**values))

    def anonymise_cases(self, profile_ids: Sequence[str]) -> int:
        result = self.conn.execute(
            update(t.cases)
            .where(t.cases.c.profile_id.in_(list(profile_ids)))
            .values(profile_id=None, subject=None, description=None, history=[])
        )
        return result.rowcount
