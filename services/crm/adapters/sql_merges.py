"""The CRM's SQL statements for what a merge, an unmerge and an erasure touch: a
profile's rows by table, the merges and their candidates, suppressions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, insert, or_, select, update

from services.crm.adapters import sql_tables as t
from services.crm.adapters.sql_rows import SqlArea, row_of

# Tables that hold rows of one profile, by the name the service uses.
OWNED: dict[str, Table] = {
    "identifiers": t.identifiers,
    "interactions": t.interactions,
    "cases": t.cases,
    "timeline": t.timeline,
}


class SqlOwnedRows(SqlArea):
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
        return [row_of(r) for r in rows]

    def delete_of(self, table: str, profile_ids: Sequence[str]) -> int:
        tbl = OWNED[table]
        result = self.conn.execute(delete(tbl).where(tbl.c.profile_id.in_(list(profile_ids))))
        return result.rowcount


class SqlMerges(SqlArea):
    def insert_merge(self, row: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.merges).values(**row))

    def get_merge(self, merge_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.merges).where(t.merges.c.id == merge_id)).first()
        return row_of(row) if row else None

    def update_merge(self, merge_id: str, values: Mapping[str, Any]) -> None:
        self.conn.execute(update(t.merges).where(t.merges.c.id == merge_id).values(**values))

    def merges_of(self, profile_ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = list(profile_ids)
        rows = self.conn.execute(
            select(t.merges)
            .where(or_(t.merges.c.survivor_id.in_(ids), t.merges.c.source_id.in_(ids)))
            .order_by(t.merges.c.at)
        ).all()
        return [row_of(r) for r in rows]

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
        return [row_of(r) for r in rows]

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


class SqlPrivacy(SqlArea):
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
