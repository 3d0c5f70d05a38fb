"""The transactional outbox for SQL-held state.

A use case inserts its events into ``sb_outbox`` in the same transaction as
the state change; the service's consumer process relays them to the stream.
A crash between XADD and DELETE publishes a row twice, with the same event
id, which every consumer deduplicates.

Several relays may run at once (one per consumer process). They take turns, so
rows go out in id order, each once: on PostgreSQL a relay locks its batch with
``FOR UPDATE`` (a second relay waits for the first to commit, then finds the
rows after it; ``SKIP LOCKED`` would let batches overtake each other, and a
consumer projecting the latest tier could then apply an older one last), on
SQLite it takes the write lock before reading (``BEGIN IMMEDIATE``).
Relaying is one pipelined XADD per batch: taking turns costs no throughput that
matters next to the writes that fill the outbox.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine

from shared.events import Event


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "sb_outbox",
        metadata,
        # BigInteger on PostgreSQL; SQLite's autoincrement needs INTEGER.
        Column(
            "id",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(64), nullable=False),
        Column("stream", String(200), nullable=False),
        Column("fields", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def add_to_outbox(conn: Connection, table: Table, stream: str, event: Event) -> None:
    conn.execute(
        insert(table).values(event_id=event.id, stream=stream, fields=json.dumps(event.to_fields()))
    )


def relay_outbox(engine: Engine, table: Table, redis: Any, *, maxlen: int, batch: int = 500) -> int:
    """Publish up to ``batch`` outbox rows in id order; returns how many were relayed."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite opens no transaction for a SELECT: without the write lock two
            # relays would read, and publish, the same rows.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        query = select(table.c.id, table.c.stream, table.c.fields).order_by(table.c.id)
        query = query.limit(batch)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()  # not SKIP LOCKED: batches must not overtake
        rows = conn.execute(query).all()
        if not rows:
            return 0
        pipe = redis.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(row.stream, json.loads(row.fields), maxlen=maxlen, approximate=True)
        pipe.execute()
        conn.execute(delete(table).where(table.c.id.in_([r.id for r in rows])))
    return len(rows)
