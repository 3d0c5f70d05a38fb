"""What the CRM's SQL adapters share: the connection each area's methods run on,
and how a result row becomes a plain dict."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shared.validation import UNPRINTABLE


class SqlArea:
    """One area's statements, on the connection of one transaction (or read)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


def row_of(mapping: Any) -> dict[str, Any]:
    return dict(mapping._mapping)


# The service mints ids ("p-<hex>", "c-<hex>") without control characters; one in a
# key (a path id) names no row, and must not reach the database: PostgreSQL refuses a
# NUL in text outright, and neither driver can encode a lone surrogate.
NOT_AN_ID = UNPRINTABLE
