"""crm schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:35:02.989824
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "crm_cases",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_number"),
    )
    with op.batch_alter_table("crm_cases", schema=None) as batch_op:
        batch_op.create_index("ix_crm_cases_profile_status", ["profile_id", "status"], unique=False)

    op.create_table(
        "crm_counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "crm_identifiers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("type", "value", name="uq_crm_identifiers_type_value"),
    )
    with op.batch_alter_table("crm_identifiers", schema=None) as batch_op:
        batch_op.create_index("ix_crm_identifiers_profile_id", ["profile_id"], unique=False)

    op.create_table(
        "crm_inbox",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "crm_interactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_interactions", schema=None) as batch_op:
        batch_op.create_index("ix_crm_interactions_profile_id", ["profile_id"], unique=False)

    op.create_table(
        "crm_merge_candidates",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("profile_a", sa.String(length=40), nullable=False),
        sa.Column("profile_b", sa.String(length=40), nullable=False),
        sa.Column("identifier_types", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("profile_a", "profile_b", name="uq_crm_merge_candidates_pair"),
    )
    op.create_table(
        "crm_merges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("survivor_id", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("unmerged_at", sa.DateTime(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_merges", schema=None) as batch_op:
        batch_op.create_index("ix_crm_merges_source_id", ["source_id"], unique=False)
        batch_op.create_index("ix_crm_merges_survivor_id", ["survivor_id"], unique=False)

    op.create_table(
        "crm_profiles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("name_key", sa.String(length=200), nullable=True),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_profiles", schema=None) as batch_op:
        batch_op.create_index("ix_crm_profiles_merged_into", ["merged_into"], unique=False)
        batch_op.create_index("ix_crm_profiles_name_key", ["name_key"], unique=False)
        batch_op.create_index("ix_crm_profiles_tier", ["tier"], unique=False)

    op.create_table(
        "crm_suppressions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "crm_timeline",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("profile_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("crm_timeline", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crm_timeline_profile_at", ["profile_id", "at", "id"], unique=False
        )

    op.create_table(
        "sb_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:

    op.drop_table("sb_outbox")
    with op.batch_alter_table("crm_timeline", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_timeline_profile_at")

    op.drop_table("crm_timeline")
    op.drop_table("crm_suppressions")
    with op.batch_alter_table("crm_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_profiles_tier")
        batch_op.drop_index("ix_crm_profiles_name_key")
        batch_op.drop_index("ix_crm_profiles_merged_into")

    op.drop_table("crm_profiles")
    with op.batch_alter_table("crm_merges", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_merges_survivor_id")
        batch_op.drop_index("ix_crm_merges_source_id")

    op.drop_table("crm_merges")
    op.drop_table("crm_merge_candidates")
    with op.batch_alter_table("crm_interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_interactions_profile_id")

    op.drop_table("crm_interactions")
    op.drop_table("crm_inbox")
    with op.batch_alter_table("crm_identifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_identifiers_profile_id")

    op.drop_table("crm_identifiers")
    op.drop_table("crm_counters")
    with op.batch_alter_table("crm_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_crm_cases_profile_status")

    op.drop_table("crm_cases")
