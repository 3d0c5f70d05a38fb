"""Marshmallow schemas of the identity API (the only place they live)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from services.identity.domain.kba import MAX_QUESTIONS
from shared.i18n import LANGUAGE_PATTERN
from shared.pagination import page_schema
from shared.validation import Exact

ID = validate.Length(min=1, max=128)
FACTOR = validate.Length(min=1, max=40)
CHANNEL = Exact(r"^[a-z0-9][a-z0-9_-]{0,31}$", error="Channel names are [a-z0-9_-].")
TIER = Exact(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="Tier names are [a-z0-9_-].")
SHORT = validate.Length(max=256)


def language_field() -> fields.String:
    return fields.String(
        validate=Exact(LANGUAGE_PATTERN, error="A language tag such as zh, zh-CN or en."),
        metadata={
            "description": "What the customer reads delivered codes in: zh (simplified) or "
            "en; another tag falls back to the profile's language, then SB_DEFAULT_LANGUAGE (zh).",
            "example": "zh-CN",
        },
    )


class DeviceSchema(Schema):
    user_agent = fields.String(validate=validate.Length(max=1024))
    platform = fields.String(validate=SHORT)
    ip = fields.String(validate=validate.Length(max=64))
    ani = fields.String(validate=validate.Length(max=32))
    app_install_id = fields.String(validate=SHORT)
    screen = fields.String(validate=validate.Length(max=32))
    timezone = fields.String(validate=validate.Length(max=64))
    languages = fields.List(
        fields.String(validate=validate.Length(max=35)), validate=validate.Length(max=20)
    )
    hardware_concurrency = fields.Integer(validate=validate.Range(min=0, max=1024))
    model = fields.String(validate=SHORT)
    os = fields.String(validate=SHORT)
    carrier = fields.String(validate=SHORT)
    line_type = fields.String(validate=validate.Length(max=32))


# -- policies -----------------------------------------------------------------------
class ChannelRuleSchema(Schema):
    allowed_factors = fields.List(fields.String(validate=FACTOR), validate=validate.Length(max=20))
    min_factors = fields.Integer(strict=True)
    require_possession = fields.Boolean()


class PolicySchema(Schema):
    min_factors = fields.Integer(strict=True, metadata={"example": 2})
    allowed_factors = fields.List(fields.String(validate=FACTOR), validate=validate.Length(max=20))
    require_possession = fields.Boolean()
    trusted_device_counts = fields.Boolean()
    trusted_device_days = fields.Integer(strict=True)
    session_ttl_seconds = fields.Integer(strict=True)
    reuse_across_channels = fields.Boolean()
    max_attempts = fields.Integer(strict=True)
    lockout_seconds = fields.Integer(strict=True)
    channels = fields.Dict(
        keys=fields.String(validate=CHANNEL),
        values=fields.Nested(ChannelRuleSchema),
        validate=validate.Length(max=20),
    )


class PolicyOutSchema(PolicySchema):
    tier = fields.String(required=True)


PolicyListSchema = page_schema(PolicyOutSchema)


class AuditEntrySchema(Schema):
    id = fields.String(required=True)
    who = fields.String(required=True)
    at = fields.String(required=True)
    tier = fields.String(required=True)
    subject = fields.String(metadata={"description": "delivery-policy | delivery-block"})
    action = fields.String(required=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


AuditPageSchema = page_schema(AuditEntrySchema)


# -- factors ------------------------------------------------------------------------
class EnrollSchema(Schema):
    type = fields.String(required=True, validate=FACTOR)
    destination = fields.String(validate=validate.Length(min=1, max=254))
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)),
        values=fields.String(validate=validate.Length(max=200)),
        validate=validate.Length(min=1, max=MAX_QUESTIONS),
    )


class ConfirmSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=12))


class FactorSchema(Schema):
    factor_id = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True)
    created_at = fields.String(required=True)
    destination = fields.String(metadata={"description": "masked"})
    questions = fields.List(fields.String())
    secret = fields.String(metadata={"description": "masked in listings, full once at enrollment"})
    otpauth_uri = fields.String()
    qr_png = fields.String(metadata={"description": "base64 PNG of the otpauth URI"})


FactorListSchema = page_schema(FactorSchema)


# -- verifications ------------------------------------------------------------------
class StartSchema(Schema):
    customer_id = fields.String(required=True, validate=ID)
    channel = fields.String(required=True, validate=CHANNEL)
    tier = fields.String(validate=TIER)
    device = fields.Nested(DeviceSchema)
    session_token = fields.String(validate=validate.Length(min=1, max=8192))
    language = language_field()


class RequiredSchema(Schema):
    min_factors = fields.Integer(required=True)
    require_possession = fields.Boolean(required=True)


class VerificationSchema(Schema):
    verification_id = fields.String(required=True)
    status = fields.String(required=True)
    tier = fields.String()
    channel = fields.String()
    reused = fields.Boolean()
    required = fields.Nested(RequiredSchema)
    available_factors = fields.List(fields.String())
    satisfied_factors = fields.List(fields.String())
    remaining_attempts = fields.Integer()
    session_token = fields.String()
    expires_at = fields.String()
    sid = fields.String()


# A document goes to the verifier as it came (docs/identity.md: {type, number, images}),
# so it is kept flat and bounded: the sandbox's str() of a 1000-deep list raised, and any
# exception of a verifier is a 503. Integers stay within 64 bits, which a verifier that
# sends the document on as JSON (orjson) can still write.
DOCUMENT_FIELDS = 20
DOCUMENT_KEY = 40
DOCUMENT_TEXT = 1024
DOCUMENT_IMAGES = 10


def _few_fields(value: dict[str, Any]) -> None:
    # Not validate.Length: apispec would document it as maxLength, a string keyword.
    if len(value) > DOCUMENT_FIELDS:
        raise ValidationError(f"At most {DOCUMENT_FIELDS} fields.")


class DocumentValue(fields.Raw):
    """One field of a document: a string, a number, a boolean, null, or a list of strings
    (``images``, base64; the request size bounds those)."""

    def __init__(self) -> None:
        super().__init__(
            allow_none=True,
            metadata={
                "anyOf": [
                    {"type": "string", "maxLength": DOCUMENT_TEXT},
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "array", "items": {"type": "string"}, "maxItems": DOCUMENT_IMAGES},
                ]
            },
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list):
            if len(value) > DOCUMENT_IMAGES or not all(isinstance(v, str) for v in value):
                raise ValidationError(f"A list holds at most {DOCUMENT_IMAGES} strings.")
        elif isinstance(value, str):
            if len(value) > DOCUMENT_TEXT:
                raise ValidationError(f"At most {DOCUMENT_TEXT} characters.")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -(2**63) <= value < 2**63:
                raise ValidationError("Integers are 64-bit.")
        elif not isinstance(value, float | bool):
            raise ValidationError("A string, a number, a boolean, null or a list of strings.")
        return value


class ChallengeSchema(Schema):
    factor = fields.String(required=True, validate=FACTOR)
    factor_id = fields.String(validate=ID)
    questions = fields.List(
        fields.String(validate=validate.Length(max=40)),
        validate=validate.Length(min=1, max=MAX_QUESTIONS),
    )
    document = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=DOCUMENT_KEY)),
        values=DocumentValue(),
        validate=_few_fields,
        metadata={
            "description": "{type, number, images: [base64]}",
            "maxProperties": DOCUMENT_FIELDS,
        },
    )
    language = language_field()  # wins over the start's


class DeliverySchema(Schema):
    channel = fields.String(required=True)
    to = fields.String(required=True)
    language = fields.String(metadata={"description": "zh or en: what the message is in"})


class ChallengeOutSchema(Schema):
    factor = fields.String(required=True)
    delivery = fields.Nested(DeliverySchema)
    expires_at = fields.String()
    questions = fields.List(fields.String())
    reference = fields.String()
    status = fields.String()


class CheckSchema(Schema):
    factor = fields.String(required=True, validate=FACTOR)
    code = fields.String(validate=validate.Length(min=1, max=12))
    answers = fields.Dict(
        keys=fields.String(validate=validate.Length(max=40)),
        values=fields.String(validate=validate.Length(max=200)),
        validate=validate.Length(max=MAX_QUESTIONS),
    )


# -- sessions and status ----------------------------------------------------------------
class TokenSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(max=8192))
    token_type_hint = fields.String(validate=validate.Length(max=64))


class IntrospectSchema(TokenSchema):
    device = fields.Nested(DeviceSchema)


class IntrospectionSchema(Schema):
    active = fields.Boolean(required=True)
    sub = fields.String()
    sid = fields.String()
    acr = fields.String()
    amr = fields.List(fields.String())
    tier = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    chn = fields.String()
    iss = fields.String()
    token_type = fields.String()
    cnf = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "RFC 8705 confirmation: the device fingerprint it is bound to"},
    )


class EmptySchema(Schema):
    pass


class RevokedSchema(Schema):
    revoked = fields.Integer(required=True)


class StatusArgs(Schema):
    channel = fields.String(required=True, validate=CHANNEL)
    ani = fields.String(validate=validate.Length(max=32))


class StatusSchema(Schema):
    verified = fields.Boolean(required=True)
    level = fields.String(required=True)
    factors = fields.List(fields.String(), required=True)
    expires_at = fields.String(allow_none=True, required=True)
    sid = fields.String(allow_none=True, required=True)


class JwkSchema(Schema):
    """A public signing key (RFC 7517): OKP Ed25519 (EdDSA) or EC P-256 (ES256, with y)."""

    kty = fields.String(required=True, validate=validate.OneOf(["OKP", "EC"]))
    crv = fields.String(required=True, validate=validate.OneOf(["Ed25519", "P-256"]))
    x = fields.String(required=True, metadata={"description": "base64url public key"})
    y = fields.String(metadata={"description": "base64url y coordinate (EC keys only)"})
    kid = fields.String(required=True, metadata={"description": "RFC 7638 thumbprint"})
    alg = fields.String(required=True, validate=validate.OneOf(["EdDSA", "ES256"]))
    use = fields.String(required=True, validate=validate.OneOf(["sig"]))


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)


# -- devices ------------------------------------------------------------------------
class FingerprintInSchema(Schema):
    device = fields.Nested(DeviceSchema, required=True)


class FingerprintSchema(Schema):
    fingerprint = fields.String(required=True)
    components = fields.List(fields.String(), required=True)


class TrustSchema(Schema):
    verification_id = fields.String(required=True, validate=ID)


class DeviceOutSchema(Schema):
    device_id = fields.String(required=True)
    fingerprint = fields.String(required=True)
    kind = fields.String(required=True)
    trusted_at = fields.String(required=True)
    expires_at = fields.String(required=True)
    flagged = fields.Boolean(required=True)


DeviceListSchema = page_schema(DeviceOutSchema)


# -- stats, export, dev -----------------------------------------------------------------
class StatsSchema(Schema):
    requests = fields.Dict(keys=fields.String(), values=fields.Integer())
    repeat_verification_rate = fields.Float(allow_none=True)
    reuse_rate = fields.Float(allow_none=True)
    duration_ms = fields.Dict()
    by_tier_channel = fields.List(fields.Dict())


class ExportSchema(Schema):
    customer_id = fields.String(required=True)
    profile = fields.Dict(allow_none=True)
    factors = fields.List(fields.Dict(), required=True)
    devices = fields.List(fields.Dict(), required=True)
    sessions = fields.List(fields.Dict(), required=True)
    verifications = fields.List(fields.Dict(), required=True)
    locked_for_seconds = fields.Integer()
    locked_until_unlocked = fields.Boolean()  # 100 consecutive failures: an admin must unlock


class DevMessagesArgs(Schema):
    to = fields.String(validate=validate.Length(max=254))


class DevMessagesSchema(Schema):
    items = fields.List(fields.Dict(), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
