"""The Alembic migrations build exactly the schema the code expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_tables import metadata
from services.crm.migrate import upgrade
from services.crm.testing import database_kinds, fresh_database


@pytest.mark.parametrize("kind", database_kinds())
def test_upgrade_head_matches_the_tables_of_the_code(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path, create=False) as url:
        upgrade(url, lock_dir=tmp_path)
        upgrade(url, lock_dir=tmp_path)  # idempotent: a second run changes nothing
        engine = make_engine(url)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == "0002"
        engine.dispose()
