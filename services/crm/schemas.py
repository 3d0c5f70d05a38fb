"""The CRM's marshmallow schemas: they validate requests and document the API."""

from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.crm.domain.cases import STATUSES
from shared.pagination import PageArgs
from shared.validation import Exact

NAME_RE = r"^[a-z0-9][a-z0-9_\-]{0,39}$"
PRIORITIES = ("low", "normal", "high", "urgent")
MAX_ATTRIBUTES_BYTES = 16 * 1024


# C0 control characters but tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _printable(value: str) -> None:
    # NUL and other control characters break PostgreSQL text and every log reader.
    # (One regex search: several times cheaper than a per-character loop, and it
    # runs on every text field of every request.)
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")


def Text(max_len: int, **kw: Any) -> fields.String:  # noqa: N802 - a field factory
    return fields.String(validate=[validate.Length(max=max_len), _printable], **kw)


def Name(**kw: Any) -> fields.String:  # noqa: N802
    return fields.String(validate=Exact(NAME_RE), **kw)


def Id(**kw: Any) -> fields.String:  # noqa: N802
    return fields.String(validate=[validate.Length(min=1, max=40), _printable], **kw)


def _attributes(value: dict[str, Any]) -> None:
    if len(json.dumps(value, ensure_ascii=False)) > MAX_ATTRIBUTES_BYTES:
        raise ValidationError(f"attributes must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON")
    for key in value:
        _printable(key)


class IdentifierSchema(Schema):
    type = Name(required=True, metadata={"example": "phone"})
    value = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=200), _printable],
        metadata={"example": "+86 138 0013 8000"},
    )


class ProfileFieldsSchema(Schema):
    name = Text(200, allow_none=True)
    tier = Name()
    language = fields.String(
        allow_none=True, validate=Exact(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    )
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Raw(allow_none=True),
        validate=_attributes,
    )


class ProfileCreateSchema(ProfileFieldsSchema):
    identifiers = fields.List(
        fields.Nested(IdentifierSchema), load_default=list, validate=validate.Length(max=20)
    )


class ProfilePatchSchema(ProfileFieldsSchema):
    identifiers = fields.List(fields.Nested(IdentifierSchema), validate=validate.Length(max=20))


class ResolveSchema(ProfileFieldsSchema):
    identifiers = fields.List(
        fields.Nested(IdentifierSchema), required=True, validate=validate.Length(min=1, max=20)
    )
    create = fields.Boolean(load_default=False)


class ProfileSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    tier = fields.String(required=True)
    language = fields.String(allow_none=True)
    attributes = fields.Dict(required=True)
    identifiers = fields.List(fields.Nested(IdentifierSchema), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ProfileQuerySchema(PageArgs):
    q = Text(
        200,
        metadata={
            "description": "name prefix or any identifier (normalised); scope agent or admin"
        },
    )
    tier = Name()
    identifier = Text(
        250,
        metadata={
            "description": "type:value, one exact identifier (normalised as resolve does): "
            "at most one profile; the only search scope channel may make",
            "example": "phone:+8613800138000",
        },
    )

    @validates_schema
    def _one_way(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("q") is not None and data.get("identifier") is not None:
            raise ValidationError("give q or identifier, not both")


class MergeSchema(Schema):
    source_id = Id(required=True)
    dry_run = fields.Boolean(load_default=False)


class MergeResultSchema(Schema):
    merge_id = fields.String(allow_none=True, required=True)
    survivor_id = fields.String(required=True)
    source_id = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    moved = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    conflicts = fields.Dict(required=True)
    filled = fields.List(fields.String(), required=True)
    profile = fields.Nested(ProfileSchema, required=True)


class UnmergeSchema(Schema):
    merge_id = Id(required=True)


class UnmergeResultSchema(Schema):
    merge_id = fields.String(required=True)
    survivor = fields.Nested(ProfileSchema, required=True)
    source = fields.Nested(ProfileSchema, required=True)


class MergeCandidateSchema(Schema):
    id = fields.Integer(required=True)
    profile_ids = fields.List(fields.String(), required=True)
    identifier_types = fields.List(fields.String(), required=True)
    first_seen = fields.DateTime(required=True)
    last_seen = fields.DateTime(required=True)
    occurrences = fields.Integer(required=True)


class TimelineItemSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    kind = fields.String(required=True)
    channel = fields.String(allow_none=True, required=True)
    summary = fields.String(required=True)
    refs = fields.Dict(required=True)


class InteractionCreateSchema(Schema):
    profile_id = Id(required=True)
    channel = Name(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["inbound", "outbound"]))
    summary = fields.String(required=True, validate=[validate.Length(min=1, max=4000), _printable])
    case_id = Id(allow_none=True)


class InteractionSchema(Schema):
    id = fields.String(required=True)
    profile_id = fields.String(required=True)
    channel = fields.String(required=True)
    direction = fields.String(required=True)
    summary = fields.String(required=True)
    case_id = fields.String(allow_none=True)
    at = fields.DateTime(required=True)


class CaseCreateSchema(Schema):
    profile_id = Id(required=True)
    channel = Name(required=True)
    subject = fields.String(required=True, validate=[validate.Length(min=1, max=500), _printable])
    description = Text(10000, load_default="")


class CaseHistorySchema(Schema):
    status = fields.String(required=True)
    at = fields.String(required=True)


class CaseSchema(Schema):
    id = fields.String(required=True)
    case_number = fields.String(
        required=True,
        metadata={
            "example": "C-7KQ-4M2-XWD",
            "description": "C- and nine Crockford base32 symbols, the last a check symbol "
            "(cases opened before 2026-12 keep the shape C-2026-000123)",
        },
    )
    profile_id = fields.String(allow_none=True, required=True)
    channel = fields.String(required=True)
    channels = fields.List(fields.String(), required=True)
    subject = fields.String(allow_none=True, required=True)
    description = fields.String(allow_none=True)
    category = fields.String(required=True)
    confidence = fields.Float(required=True)
    priority = fields.String(required=True)
    status = fields.String(required=True)
    contacts = fields.Integer(required=True)
    history = fields.List(fields.Nested(CaseHistorySchema), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(allow_none=True)
    merged = fields.Boolean(required=True)


class CasePatchSchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = Name()

    @validates_schema
    def _something(self, data: dict[str, Any], **_kw: Any) -> None:
        if not data:
            raise ValidationError("give at least one of status, priority, category")


class LookupQuerySchema(Schema):
    case_number = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=32), _printable],
        metadata={
            "description": "as told to the customer; case, spaces and hyphens do not "
            "matter, O reads as 0, I and L as 1; a wrong check symbol is 400 "
            "invalid-case-number",
            "example": "C-7KQ-4M2-XWD",
        },
    )
    phone = fields.String(required=True, validate=[validate.Length(min=1, max=64), _printable])
    caller = fields.String(
        validate=[validate.Length(min=1, max=128), _printable],
        metadata={
            "description": "who the channel asks for (an IVR's ANI, a web user's IP): the "
            "rate limit is then per caller, under a ceiling per API client"
        },
    )


class LookupSchema(Schema):
    status = fields.String(required=True)
    category = fields.String(required=True)
    updated_at = fields.DateTime(required=True)


class ExportSchema(Schema):
    format = fields.String(required=True, metadata={"example": "switchboard.crm.export/1"})
    customer_id = fields.String(required=True)
    generated_at = fields.String(required=True)
    profile = fields.Dict(required=True, metadata={"description": "as GET /v1/profiles/{id}"})
    merged_profile_ids = fields.List(fields.String(), required=True)
    identifiers = fields.List(fields.Dict(), required=True)
    interactions = fields.List(fields.Dict(), required=True)
    cases = fields.List(fields.Dict(), required=True)
    timeline = fields.List(fields.Dict(), required=True)
    merges = fields.List(fields.Dict(), required=True)
    services = fields.Dict(
        required=True,
        metadata={"description": "service name -> customer id -> that service's export"},
    )


class StatsSchema(Schema):
    window_seconds = fields.Integer(required=True)
    generated_at = fields.String(required=True)
    contacts = fields.Integer(required=True)
    cases_opened = fields.Integer(required=True)
    repeat_contacts = fields.Integer(required=True)
    repeat_contact_rate = fields.Float(allow_none=True, required=True)
    cases_resolved = fields.Integer(required=True)
    first_contact_resolution = fields.Float(allow_none=True, required=True)
