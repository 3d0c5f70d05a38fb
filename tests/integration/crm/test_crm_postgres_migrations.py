"""Migrations racing on PostgreSQL: replicas of the CRM each run the migrate command
at start, and a file lock holds only within one container. Collected only where
TEST_DATABASE_URL points at a server (see conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.migration import MigrationContext

from services.crm.adapters.sql_engine import make_engine
from services.crm.testing import fresh_database
from shared.testing import ROOT


def test_replicas_migrating_at_once_all_succeed(tmp_path: Path) -> None:
    with fresh_database("postgresql", tmp_path, create=False) as url:
        script = "import sys; from pathlib import Path; from services.crm.migrate import upgrade; "
        script += "upgrade(sys.argv[1], lock_dir=Path(sys.argv[2]))"
        # Each with a lock directory of its own, as containers have.
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url, str(tmp_path / f"replica-{i}")],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        errors = [run.communicate(timeout=120)[1] for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, errors
        engine = make_engine(url)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0002"
        engine.dispose()
