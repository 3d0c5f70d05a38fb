"""name prefix search uses its index on PostgreSQL whatever the collation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's LIKE uses no index either way; nothing to change
    op.drop_index("ix_crm_profiles_name_key", table_name="crm_profiles")
    op.create_index(
        "ix_crm_profiles_name_key",
        "crm_profiles",
        ["name_key"],
        postgresql_ops={"name_key": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_crm_profiles_name_key", table_name="crm_profiles")
    op.create_index("ix_crm_profiles_name_key", "crm_profiles", ["name_key"])
