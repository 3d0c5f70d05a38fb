"""An erased customer's values leave the database files (API.md B "Erasure reaches the
disk"): SQLite's file, WAL and shared memory; PostgreSQL's pages, read raw with
pageinspect, of every table, index and TOAST table of the CRM's schema."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.crm.adapters.sql_compaction import compact, vacuum_mode
from services.crm.adapters.sql_engine import make_engine
from services.crm.service import CrmService
from shared.config import ConfigError, Settings


def customer_values() -> list[str]:
    tag = uuid.uuid4().hex[:10]
    return [f"Zorbquim {tag.upper()}", f"+86139{random.randrange(10**8):08d}", f"zq.{tag}@ex.org"]


def write_and_erase(crm: CrmService, engine: Engine, name: str, phone: str, email: str) -> None:
    # Other customers around it, so its rows share pages with rows that stay.
    for i in range(30):
        crm.create_profile(
            [{"type": "email", "value": f"other{i}.{uuid.uuid4().hex[:6]}@x.org"}],
            {"name": f"Other {i}"},
        )
    profile = crm.create_profile(
        [{"type": "phone", "value": phone}, {"type": "email", "value": email}], {"name": name}
    )
    crm.add_interaction(
        {
            "profile_id": profile["id"],
            "channel": "chat",
            "direction": "inbound",
            "summary": f"{name} wrote from {email}",
        }
    )
    crm.update_profile(profile["id"], {"name": name + " Jr"})
    if engine.dialect.name == "sqlite":
        # As SQLite's automatic checkpoint does every 1000 pages: the rows reach the file.
        compact(engine)
    crm.erase(profile["id"])


def sqlite_files_holding(engine: Engine, needles: list[str]) -> dict[str, list[str]]:
    path = Path(str(engine.url.database))
    found: dict[str, list[str]] = {}
    for candidate in path.parent.glob(path.name + "*"):
        data = candidate.read_bytes()
        hits = [n for n in needles if n.encode() in data]
        if hits:
            found[candidate.name] = hits
    return found


def postgres_pages_holding(engine: Engine, needles: list[str]) -> dict[str, list[str]]:
    """Every relation of the test's schema whose raw pages contain a needle."""
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public"))
        conn.commit()
        relations = conn.execute(
            text(
                "SELECT c.oid::regclass::text, c.relpages FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'i', 't') AND (n.nspname = current_schema() "
                "OR c.oid IN (SELECT reltoastrelid FROM pg_class k JOIN pg_namespace kn "
                "ON kn.oid = k.relnamespace WHERE kn.nspname = current_schema()))"
            )
        ).all()
        for name, _ in relations:
            blocks = conn.execute(
                text(
                    "SELECT pg_relation_size(CAST(:r AS regclass))"
                    " / current_setting('block_size')::int"
                ),
                {"r": name},
            ).scalar_one()
            for block in range(int(blocks)):
                page = conn.execute(
                    text("SELECT public.get_raw_page(:r, :b)"), {"r": name, "b": block}
                ).scalar_one()
                hits = [n for n in needles if n.encode() in bytes(page)]
                if hits:
                    found.setdefault(name, []).extend(hits)
    return found


def holding(engine: Engine, needles: list[str]) -> dict[str, list[str]]:
    if engine.dialect.name == "sqlite":
        return sqlite_files_holding(engine, needles)
    return postgres_pages_holding(engine, needles)


def test_after_erasure_and_compaction_no_value_remains_in_the_database_files(
    crm: CrmService, engine: Engine
) -> None:
    needles = customer_values()
    write_and_erase(crm, engine, *needles)
    # The deletes alone leave the values in the files: this is what compaction is for.
    assert holding(engine, needles), "the values never reached the files: the test is blind"
    compact(engine)
    assert holding(engine, needles) == {}


def test_sqlite_connections_overwrite_deleted_rows(tmp_path: Path) -> None:
    """Debian's SQLite overwrites by default (compiled with SECURE_DELETE); other builds
    (macOS, python.org's) do not, and then a deleted row stays in the file after the
    checkpoint: every connection of ours asks for it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
    engine.dispose()
    raw = sqlite3.connect(tmp_path / "plain.db")
    raw.execute("PRAGMA secure_delete=OFF")
    raw.execute("CREATE TABLE t (v TEXT)")
    raw.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(20)])
    raw.execute("INSERT INTO t VALUES ('Zorbquim LEFTOVER')")
    raw.commit()
    raw.execute("DELETE FROM t WHERE v = 'Zorbquim LEFTOVER'")
    raw.commit()
    raw.close()
    assert b"Zorbquim LEFTOVER" in (tmp_path / "plain.db").read_bytes()


def test_the_vacuum_mode_is_checked_at_start(make_settings: Callable[..., Settings]) -> None:
    assert vacuum_mode(make_settings("crm")) == "full"
    assert vacuum_mode(make_settings("crm", CRM_ERASURE_VACUUM="Plain")) == "plain"
    with pytest.raises(ConfigError, match="CRM_ERASURE_VACUUM"):
        vacuum_mode(make_settings("crm", CRM_ERASURE_VACUUM="sometimes"))
