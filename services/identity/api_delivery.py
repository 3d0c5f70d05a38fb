"""HTTP of the delivery fraud guard: the policy and the prefix blocks (scope admin)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.identity import errors as e
from services.identity.api import _who, svc
from services.identity.delivery_guard import DeliveryGuard
from services.identity.domain.delivery_policy import LINE_TYPES
from shared.app import Blueprint
from shared.auth import require_scope

delivery_blp = Blueprint(
    "identity-delivery", __name__, url_prefix="/v1", description="Delivery fraud guard"
)


class CountryList(fields.Field):
    """``"*"`` (any country, not the international networks) or a list of calling codes."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value == "*":
            return value
        if isinstance(value, list) and len(value) <= 300 and all(isinstance(v, str) for v in value):
            return value
        raise ValidationError('"*" or a list of calling codes such as ["86", "44"].')

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


_COUNTRIES_DOC = {
    "oneOf": [{"type": "string", "enum": ["*"]}, {"type": "array", "items": {"type": "string"}}]
}


class AllowedCountriesSchema(Schema):
    sms = CountryList(metadata=_COUNTRIES_DOC | {"example": ["86"]})
    voice = CountryList(metadata=_COUNTRIES_DOC | {"example": ["86"]})
    email = CountryList(metadata=_COUNTRIES_DOC | {"example": "*"})


class DeliveryLimitsSchema(Schema):
    per_client_per_hour = fields.Integer(strict=True, metadata={"example": 1000})
    per_customer_per_hour = fields.Integer(strict=True, metadata={"example": 10})
    per_prefix_per_hour = fields.Integer(strict=True, metadata={"example": 50})


class AutoBlockSchema(Schema):
    enabled = fields.Boolean()
    min_sends = fields.Integer(strict=True, metadata={"example": 30})
    min_conversion = fields.Float(metadata={"example": 0.2})
    window_seconds = fields.Integer(strict=True, metadata={"example": 3600})
    grace_seconds = fields.Integer(strict=True, metadata={"example": 300})
    block_seconds = fields.Integer(strict=True, metadata={"example": 3600})


class DeliveryPolicySchema(Schema):
    allowed_countries = fields.Nested(AllowedCountriesSchema)
    max_destinations_per_customer = fields.Integer(strict=True, metadata={"example": 3})
    limits = fields.Nested(DeliveryLimitsSchema)
    block_line_types = fields.List(
        fields.String(validate=validate.OneOf(LINE_TYPES)), validate=validate.Length(max=20)
    )
    auto_block = fields.Nested(AutoBlockSchema)
    prefix_digits = fields.Integer(strict=True, metadata={"example": 5})
    # What GET answers can be PUT back as it is: the blocks in it are ignored.
    blocks = fields.Raw(load_only=True, metadata={"description": "ignored"})


class DeliveryBlockSchema(Schema):
    prefix = fields.String(required=True, metadata={"example": "+44-70000"})
    until = fields.String(required=True)


class DeliveryPolicyOutSchema(DeliveryPolicySchema):
    blocks = fields.List(fields.Nested(DeliveryBlockSchema), required=True)  # type: ignore[assignment]


class DeliveryBlocksSchema(Schema):
    items = fields.List(fields.Nested(DeliveryBlockSchema), required=True)


def guard() -> DeliveryGuard:
    found = svc().guard
    if found is None:
        raise e.NotFound("no delivery guard is configured")
    return found


@delivery_blp.route("/admin/delivery-policy", methods=["GET"])
@require_scope("admin")
@delivery_blp.response(200, DeliveryPolicyOutSchema())
def get_delivery_policy() -> dict[str, Any]:
    """The delivery policy (the default until one is PUT) and the prefixes blocked now."""
    return guard().view()


@delivery_blp.route("/admin/delivery-policy", methods=["PUT"])
@require_scope("admin")
@delivery_blp.arguments(DeliveryPolicySchema())
@delivery_blp.response(200, DeliveryPolicyOutSchema())
def put_delivery_policy(data: dict[str, Any]) -> dict[str, Any]:
    """Replace the delivery policy (absent fields take their defaults; audited, published)."""
    data.pop("blocks", None)
    return guard().put(data, _who())


@delivery_blp.route("/admin/delivery-blocks", methods=["GET"])
@require_scope("admin")
@delivery_blp.response(200, DeliveryBlocksSchema())
def list_delivery_blocks() -> dict[str, Any]:
    """Prefixes the fraud guard blocked, until when."""
    return {"items": guard().blocks()}


@delivery_blp.route("/admin/delivery-blocks/<prefix>", methods=["DELETE"])
@require_scope("admin")
@delivery_blp.response(204)
def lift_delivery_block(prefix: str) -> None:
    """Lift a prefix block before it ends (audited)."""
    guard().lift(prefix[:32], _who())
