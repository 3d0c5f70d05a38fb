"""Cursor pagination: ``?limit=&cursor=`` -> ``{"items": [...], "next_cursor"}``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from marshmallow import Schema, fields, validate

from shared.errors import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


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


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(
            "the cursor is not one this service issued", errors={"cursor": ["Invalid cursor."]}
        ) from None
    if not isinstance(value, dict):
        raise BadRequest(
            "the cursor is not one this service issued", errors={"cursor": ["Invalid cursor."]}
        )
    return value
