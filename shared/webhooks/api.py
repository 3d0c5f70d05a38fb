"""``/v1/admin/webhooks``: the blueprint each service registers (scope ``admin``).

A subscription's secret is returned in clear once, in the answer to the PUT that set
it (generated when the body has none); afterwards only ``whsec_...`` and its last
four characters.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import Schema, fields, validate

from shared.app import Blueprint, ctx
from shared.auth import require_scope
from shared.errors import NotFound, ValidationFailed
from shared.pagination import (
    PageArgs,
    bad_cursor,
    cursor_str,
    decode_cursor,
    encode_cursor,
    page_schema,
)
from shared.webhooks import domain
from shared.webhooks.config import WebhookConfig
from shared.webhooks.store import Subscription, WebhookStore, now_iso


class WebhookPutSchema(Schema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"example": "https://hooks.example.com/switchboard"},
    )
    events = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        required=True,
        validate=validate.Length(min=1, max=domain.MAX_PATTERNS),
        metadata={"example": ["crm.case.*"]},
    )
    secret = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "whsec_<base64 of 24-64 bytes>; generated when absent"},
    )


class WebhookSchema(Schema):
    name = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    secret = fields.String(
        required=True,
        metadata={"description": "in clear only in the answer to the PUT that set it"},
    )
    enabled = fields.Boolean(required=True)
    created_at = fields.String(required=True)
    updated_at = fields.String(required=True)
    disabled_at = fields.String(allow_none=True)
    disabled_reason = fields.String(allow_none=True)


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)


class WebhookDeliverySchema(Schema):
    id = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    attempt = fields.Integer(required=True)
    outcome = fields.String(
        required=True, validate=validate.OneOf(["delivered", "retrying", "failed"])
    )
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Integer(required=True)
    at = fields.String(required=True)


def _store() -> WebhookStore:
    app = current_app
    cached = app.extensions.get("sb_webhooks")
    if cached is None:
        service = ctx()
        config = WebhookConfig.from_settings(service.settings)
        store = WebhookStore(
            service.redis, service.settings.service, config.sealer, log_max=config.log_max
        )
        cached = app.extensions["sb_webhooks"] = (store, config)
    store, _ = cached
    return store


def _config() -> WebhookConfig:
    _store()
    config: WebhookConfig = current_app.extensions["sb_webhooks"][1]
    return config


def _view(sub: Subscription, clear_secret: bool = False) -> dict[str, Any]:
    return {
        "name": sub.name,
        "url": sub.url,
        "events": sub.events,
        "secret": sub.secret if clear_secret else domain.mask(sub.secret),
        "enabled": sub.enabled,
        "created_at": sub.created_at,
        "updated_at": sub.updated_at,
        "disabled_at": sub.disabled_at,
        "disabled_reason": sub.disabled_reason,
    }


def _found(name: str) -> Subscription:
    sub = _store().get(name) if domain.NAME.match(name) else None
    if sub is None:
        raise NotFound(f"no webhook {name!r}")
    return sub


def put_webhook(name: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    service = ctx().settings.service
    try:
        if not domain.NAME.match(name):
            raise domain.InvalidWebhook(
                "name", "1-64 characters: lowercase letters, digits, '-' and '_'"
            )
        events = list(dict.fromkeys(domain.check_pattern(p, service) for p in body["events"]))
        secret = body.get("secret")
        if secret is not None:
            domain.secret_key(secret)
        _config().targets.check(body["url"])
    except domain.InvalidWebhook as exc:
        raise ValidationFailed(exc.message, errors={exc.field: [exc.message]}) from None
    store = _store()
    old = store.get(name)
    now = now_iso()
    sub = Subscription(
        name=name,
        url=body["url"],
        events=events,
        secret=secret or (old.secret if old else domain.new_secret()),
        created_at=old.created_at if old else now,
        updated_at=now,
    )
    store.put(sub)
    return _view(sub, clear_secret=old is None or secret is not None), (200 if old else 201)


def blueprint(service: str) -> Blueprint:
    """The webhooks endpoints; ``service`` only names the blueprint."""
    blp = Blueprint(
        f"{service}-webhooks",
        __name__,
        url_prefix="/v1/admin/webhooks",
        description="Outgoing webhooks (docs/webhooks.md)",
    )

    @blp.route("", methods=["GET"])
    @require_scope("admin")
    @blp.response(200, WebhookListSchema())
    def list_webhooks() -> dict[str, Any]:
        """Every webhook subscription of this service (secrets masked)."""
        return {"items": [_view(sub) for sub in _store().all()]}

    @blp.route("/<string:name>", methods=["PUT"])
    @require_scope("admin")
    @blp.arguments(WebhookPutSchema())
    @blp.response(200, WebhookSchema(), description="Replaced")
    @blp.alt_response(201, schema=WebhookSchema(), description="Created")
    def put(body: dict[str, Any], name: str) -> Any:
        """Create or replace a subscription (re-enables a disabled one)."""
        view, status = put_webhook(name, body)
        return view, status

    @blp.route("/<string:name>", methods=["GET"])
    @require_scope("admin")
    @blp.response(200, WebhookSchema())
    def get_webhook(name: str) -> dict[str, Any]:
        """One subscription (secret masked)."""
        return _view(_found(name))

    @blp.route("/<string:name>", methods=["DELETE"])
    @require_scope("admin")
    @blp.response(204)
    def delete_webhook(name: str) -> None:
        """Delete a subscription, its queue and its deliveries log."""
        _found(name)
        _store().delete(name)

    @blp.route("/<string:name>/deliveries", methods=["GET"])
    @require_scope("admin")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, page_schema(WebhookDeliverySchema))
    def list_deliveries(args: dict[str, Any], name: str) -> dict[str, Any]:
        """The attempts, newest first (the last ``WEBHOOK_LOG_MAX`` are kept)."""
        _found(name)
        position = decode_cursor(args["cursor"])
        after = cursor_str(position, "id") if position else None
        if after is not None and not _stream_id(after):
            raise bad_cursor()
        items, more = _store().deliveries(name, args["limit"], after)
        return {"items": items, "next_cursor": encode_cursor({"id": more}) if more else None}

    return blp


def _stream_id(value: str) -> bool:
    ms, dash, seq = value.partition("-")
    return bool(dash) and ms.isdigit() and seq.isdigit() and len(value) <= 41
