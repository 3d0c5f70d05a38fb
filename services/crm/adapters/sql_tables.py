"""The CRM's SQL schema (SQLAlchemy Core). Alembic migrations create it; tests may
use ``metadata.create_all``. Times are stored as naive UTC and read back aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from shared.sql_outbox import outbox_table


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python, naive UTC in the database (same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER

metadata = MetaData()

profiles = Table(
    "crm_profiles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),  # active | merged
    Column("merged_into", String(40), nullable=True),
    Column("name", String(200), nullable=True),
    Column("name_key", String(200), nullable=True),  # casefolded, for prefix search
    Column("tier", String(40), nullable=False),
    Column("language", String(20), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Pattern ops: a LIKE 'prefix%' search uses the index whatever the collation.
    Index(
        "ix_crm_profiles_name_key",
        "name_key",
        postgresql_ops={"name_key": "varchar_pattern_ops"},
    ),
    Index("ix_crm_profiles_tier", "tier"),
    Index("ix_crm_profiles_merged_into", "merged_into"),
)

identifiers = Table(
    "crm_identifiers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("profile_id", String(40), nullable=False),
    Column("type", String(40), nullable=False),
    Column("value", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # One identifier, one profile: the race of concurrent creates ends here.
    UniqueConstraint("type", "value", name="uq_crm_identifiers_type_value"),
    Index("ix_crm_identifiers_profile_id", "profile_id"),
)

interactions = Table(
    "crm_interactions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("profile_id", String(40), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("case_id", String(40), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_crm_interactions_profile_id", "profile_id"),
)

cases = Table(
    "crm_cases",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_number", String(32), nullable=False, unique=True),
    Column("profile_id", String(40), nullable=True),  # NULL once anonymised
    Column("channel", String(40), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("subject", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("category", String(40), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("priority", String(16), nullable=False),
    Column("status", String(20), nullable=False),
    Column("contacts", Integer, nullable=False),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Index("ix_crm_cases_profile_status", "profile_id", "status"),
)

counters = Table(
    "crm_counters",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

timeline = Table(
    "crm_timeline",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("profile_id", String(40), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("channel", String(40), nullable=True),
    Column("summary", Text, nullable=False),
    Column("refs", JSON, nullable=False),
    Index("ix_crm_timeline_profile_at", "profile_id", "at", "id"),
)

merges = Table(
    "crm_merges",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("survivor_id", String(40), nullable=False),
    Column("source_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),  # merged | unmerged
    Column("at", UTCDateTime, nullable=False),
    Column("unmerged_at", UTCDateTime, nullable=True),
    Column("record", JSON, nullable=False),
    Index("ix_crm_merges_survivor_id", "survivor_id"),
    Index("ix_crm_merges_source_id", "source_id"),
)

merge_candidates = Table(
    "crm_merge_candidates",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("profile_a", String(40), nullable=False),
    Column("profile_b", String(40), nullable=False),
    Column("identifier_types", JSON, nullable=False),  # types only: no personal data
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("occurrences", Integer, nullable=False),
    UniqueConstraint("profile_a", "profile_b", name="uq_crm_merge_candidates_pair"),
)

suppressions = Table(
    "crm_suppressions",
    metadata,
    Column("digest", String(64), primary_key=True),  # HMAC of type:value, never the value
    Column("until", UTCDateTime, nullable=False),
)

inbox = Table(
    "crm_inbox",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)

outbox = outbox_table(metadata)
