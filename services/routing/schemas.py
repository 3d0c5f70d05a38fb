"""Marshmallow schemas of the routing API (the only place they live)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.routing.domain.model import AGENT_STATUSES, CATEGORIES, CHANNEL_PATTERN, STATUSES
from shared.pagination import page_schema
from shared.validation import Exact

NAME = Exact(r"^[A-Za-z0-9_.\-]{1,40}$", error="1-40 letters, digits, _ . -")
CHANNEL = Exact(CHANNEL_PATTERN, error="a lower-case channel name")
LANGUAGE = Exact(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$", error="a language tag")
# An id routing does not mint (a customer's, a task's, a reservation's): in a path and
# in a body alike, so a customer a task names can be exported by that id.
OPAQUE_ID = r"^[^\x00-\x1f]{1,200}$"
LEVEL = validate.Range(min=1, max=5)


def _skills(**kw: object) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=NAME),
        values=fields.Integer(validate=LEVEL, strict=True),
        validate=validate.Length(max=50),
        **kw,  # type: ignore[arg-type]
    )


class AgentInSchema(Schema):
    name = fields.String(load_default="", validate=validate.Length(max=200))
    skills = _skills(load_default=dict)
    languages = fields.List(
        fields.String(validate=LANGUAGE), load_default=list, validate=validate.Length(max=20)
    )
    channels = fields.Dict(
        keys=fields.String(validate=CHANNEL),
        values=fields.Integer(validate=validate.Range(min=0, max=100), strict=True),
        required=True,
        validate=validate.Length(min=1, max=10),
        metadata={"description": "per-channel concurrent capacity"},
    )
    team = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))
    status = fields.String(
        validate=validate.OneOf(AGENT_STATUSES),
        metadata={"description": "optional initial status (default offline for a new agent)"},
    )


class AgentSchema(Schema):
    agent_id = fields.String(required=True)
    name = fields.String(required=True)
    team = fields.String(allow_none=True, required=True)
    skills = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    languages = fields.List(fields.String(), required=True)
    channels = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    status = fields.String(required=True, validate=validate.OneOf(AGENT_STATUSES))
    # Named load_ in Python: a field called "load" would shadow Schema.load.
    load_ = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        attribute="load",
        data_key="load",
    )
    occupancy = fields.Float(required=True)
    idle_since = fields.String(allow_none=True, required=True)


class AgentStatusInSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(AGENT_STATUSES))


class TaskInSchema(Schema):
    channel = fields.String(required=True, validate=CHANNEL)
    customer_id = fields.String(
        required=True, validate=Exact(OPAQUE_ID, error="1-200 characters, no controls")
    )
    category = fields.String(load_default="basic", validate=validate.OneOf(CATEGORIES))
    skills = _skills(load_default=dict)
    language = fields.String(load_default=None, allow_none=True, validate=LANGUAGE)
    tier = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    sentiment = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=-1.0, max=1.0)
    )
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(max=100)),
        load_default=dict,
        validate=validate.Length(max=50),
    )


class TaskSchema(Schema):
    task_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    priority = fields.Integer(required=True)
    sla_due_at = fields.String(required=True)
    created_at = fields.String(required=True)
    channel = fields.String(required=True)
    customer_id = fields.String(required=True)
    category = fields.String(required=True)
    skills = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    language = fields.String(allow_none=True, required=True)
    tier = fields.String(allow_none=True, required=True)
    sentiment = fields.Float(allow_none=True, required=True)
    attributes = fields.Dict(required=True)
    agent_id = fields.String(allow_none=True, required=True)
    reservation_id = fields.String(allow_none=True, required=True)
    verified = fields.Boolean(required=True)
    escalated = fields.Boolean(required=True)
    team = fields.String(allow_none=True, required=True)
    case_id = fields.String(allow_none=True, required=True)


class CancelInSchema(Schema):
    reason = fields.String(load_default="canceled", validate=validate.Length(min=1, max=100))


class ReservationSchema(Schema):
    reservation_id = fields.String(required=True)
    task_id = fields.String(required=True)
    agent_id = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    created_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    task = fields.Nested(TaskSchema, metadata={"description": "the offered task"})


class ReservationListArgs(Schema):
    wait = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0, max=20),
        metadata={"description": "long-poll: seconds to wait for an offer when none is pending"},
    )


ReservationListSchema = page_schema(ReservationSchema)


class QueueStatsItemSchema(Schema):
    category = fields.String(required=True)
    channel = fields.String(required=True)
    waiting = fields.Integer(required=True)
    longest_wait_seconds = fields.Float(required=True)
    agents_available = fields.Integer(required=True)
    answered = fields.Integer(required=True)
    service_level = fields.Float(allow_none=True, required=True)
    average_speed_of_answer_seconds = fields.Float(allow_none=True, required=True)
    sla_target_seconds = fields.Integer(required=True)


class QueueStatsSchema(Schema):
    window_seconds = fields.Integer(required=True)
    generated_at = fields.String(required=True)
    items = fields.List(fields.Nested(QueueStatsItemSchema), required=True)


AgentPageSchema = page_schema(AgentSchema)


class ExportSchema(Schema):
    customer_id = fields.String(required=True)
    tasks = fields.List(fields.Nested(TaskSchema), required=True)
    reservations = fields.List(fields.Nested(ReservationSchema), required=True)
    last_agent_id = fields.String(allow_none=True, required=True)


class FirstResponseSchema(Schema):
    category = fields.String(required=True)
    answered = fields.Integer(required=True)
    average_seconds = fields.Float(allow_none=True, required=True)
    p50_seconds_at_most = fields.Float(allow_none=True, required=True)
    p90_seconds_at_most = fields.Float(allow_none=True, required=True)
    within_sla = fields.Float(allow_none=True, required=True)
    sla_target_seconds = fields.Float(allow_none=True, required=True)
    within_field_benchmark = fields.Float(allow_none=True, required=True)


class KpiSchema(Schema):
    window_seconds = fields.Integer(required=True)
    generated_at = fields.String(required=True)
    field_benchmark_seconds = fields.Integer(required=True)
    first_response = fields.List(fields.Nested(FirstResponseSchema), required=True)
