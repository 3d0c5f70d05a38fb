"""Cursor pagination: ``?limit=&cursor=`` -> ``{"items": [...], "next_cursor"}``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from shared.errors import BadRequest
from shared.validation import UNPRINTABLE

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_INT64 = range(-(2**63), 2**63)


class PageArgs(Schema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


_page_schemas: dict[type[Schema], type[Schema]] = {}


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """A ``{"items": [...], "next_cursor"}`` schema around ``item_schema`` (cached)."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item_schema] = type(
            name,
            (Schema,),
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "next_cursor": fields.String(allow_none=True, required=True),
            },
        )
    return _page_schemas[item_schema]


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_cursor() -> BadRequest:
    """The one answer to a cursor this service did not issue."""
    return BadRequest(
        "the cursor is not one this service issued", errors={"cursor": ["Invalid cursor."]}
    )


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_cursor() from None
    if not isinstance(value, dict):
        raise bad_cursor()
    return value


# A decoded cursor is client input: its values reach SQL and Redis, so each is checked
# to be of the kind this service issues, or the request fails there with a 500.
def cursor_int(position: Mapping[str, Any], key: str) -> int:
    """``position[key]``: an int a signed 64-bit column can hold (a bool is no id)."""
    value = position.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value not in _INT64:
        raise bad_cursor()
    return value


def cursor_str(position: Mapping[str, Any], key: str) -> str:
    """``position[key]``: a string without control characters or lone surrogates."""
    value = position.get(key)
    if not isinstance(value, str) or UNPRINTABLE.search(value):
        raise bad_cursor()
    return value


def cursor_time(position: Mapping[str, Any], key: str) -> datetime:
    """``position[key]``: an ISO time, as aware UTC (naive is UTC, as the stores read it)."""
    text = cursor_str(position, key)
    try:
        at = datetime.fromisoformat(text)
        # Near year 1 or 9999 an offset can push the UTC time out of range.
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_cursor() from None
