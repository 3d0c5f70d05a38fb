"""``python -m services.crm.migrate``: bring the CRM database to the newest schema.

``make run`` and deployments call it before the CRM starts. In dev mode the app
also migrates itself on start (under a file lock, for several workers).
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from services.crm.adapters.sql_engine import database_url
from shared.config import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, *, lock_dir: Path | None = None) -> None:
    """``alembic upgrade head``; with ``lock_dir``, one process at a time."""
    if lock_dir is None:
        command.upgrade(alembic_config(url), "head")
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "crm-migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> int:
    settings = Settings.from_env(service="crm")
    url = database_url(settings)
    upgrade(url, lock_dir=settings.var_dir)
    print(f"crm database at head ({url.split('://', 1)[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
