"""HTTP entrypoint of the identity service: schema.load -> use case -> schema.dump."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from flask import request

from services.identity import errors as e
from services.identity import schemas as s
from services.identity.domain.ids import is_minted
from shared.app import Blueprint, ctx
from shared.auth import current_client, require_scope
from shared.errors import PROBLEM_BASE, ProblemError
from shared.form_bodies import JSON_OR_FORM, also_form
from shared.openapi import answers
from shared.pagination import (
    PageArgs,
    bad_cursor,
    cursor_str,
    decode_cursor,
    encode_cursor,
)

if TYPE_CHECKING:
    from services.identity.bootstrap import Wiring

blp = Blueprint("identity", __name__, url_prefix="/v1", description="Switchboard Identity API")
wk = Blueprint("well-known", __name__, url_prefix="/.well-known", description="Public keys")


def svc() -> Wiring:
    return ctx()["identity"]


def _who() -> str:
    client = current_client()
    return client.client if client else "unknown"


def _check_id(value: str, name: str = "customer_id") -> str:
    if not 1 <= len(value) <= 128:
        raise ProblemError(
            "ids are 1 to 128 characters",
            status=400,
            title="Validation Failed",
            type=PROBLEM_BASE + "validation",
            errors={name: ["Invalid length."]},
        )
    return value


_NO_VERIFICATION = "no such verification (it may have expired)"  # service.py's own 404


def _minted(value: str, prefix: str, name: str, unknown: str) -> str:
    """``value`` if the store could have minted it; otherwise the very 404 of an unknown
    id (an id of the wrong shape tells no more than one that expired). These ids become
    key names: "<vid>:att" named the attempts counter of a real verification."""
    _check_id(value, name)  # the 400 of an out-of-range length stays as it was
    if not is_minted(value, prefix):
        raise e.NotFound(unknown)
    return value


def _vid(value: str) -> str:
    return _minted(value, "v", "verification_id", _NO_VERIFICATION)


_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


def _stream_id(text: str) -> str:
    """An audit cursor holds an entry id: two 64-bit numbers above 0-0 (Redis refuses
    anything else in the exclusive bound of XREVRANGE, and that would be a 500)."""
    match = _STREAM_ID.fullmatch(text)
    if not match or max(map(int, match.groups())) >= 2**64 or text == "0-0":
        raise bad_cursor()
    return text


def _page(items: list[dict[str, Any]], args: dict[str, Any], key: str) -> dict[str, Any]:
    after = (decode_cursor(args.get("cursor")) or {}).get("after")
    rows = [i for i in items if after is None or str(i[key]) > str(after)]
    page = rows[: args["limit"]]
    more = len(rows) > len(page)
    return {
        "items": page,
        "next_cursor": encode_cursor({"after": page[-1][key]}) if more and page else None,
    }


# -- policies (admin) ---------------------------------------------------------------------
@blp.route("/admin/tiers")
@require_scope("admin")
@blp.arguments(PageArgs(), location="query")
@blp.response(200, s.PolicyListSchema())
def list_tiers(args: dict[str, Any]) -> dict[str, Any]:
    """Every tier policy (the default tier is always there)."""
    return _page(svc().policies.policies(), args, "tier")


@blp.route("/admin/tiers/<tier>", methods=["GET"])
@require_scope("admin")
@blp.response(200, s.PolicyOutSchema())
def get_tier(tier: str) -> dict[str, Any]:
    """One tier's policy."""
    return svc().policies.get_policy(tier)


@blp.route("/admin/tiers/<tier>", methods=["PUT"])
@require_scope("admin")
@blp.arguments(s.PolicySchema())
@blp.response(200, s.PolicyOutSchema())
@blp.alt_response(201, schema=s.PolicyOutSchema(), description="Created")
def put_tier(data: dict[str, Any], tier: str) -> Any:
    """Create or replace a tier's verification policy (audited, published)."""
    result = svc().policies.put_policy(tier, data, _who())
    return result.body, result.status


@blp.route("/admin/tiers/<tier>", methods=["DELETE"])
@answers(409)
@require_scope("admin")
@blp.response(204)
def delete_tier(tier: str) -> None:
    """Delete a tier's policy; its customers fall back to the default tier."""
    svc().policies.delete_policy(tier, _who())


@blp.route("/admin/audit")
@blp.doc(operationId="listAudit")
@require_scope("admin")
@blp.arguments(PageArgs(), location="query")
@blp.response(200, s.AuditPageSchema())
def audit(args: dict[str, Any]) -> dict[str, Any]:
    """Policy changes, newest first: who, when, before, after."""
    position = decode_cursor(args.get("cursor"))
    before = _stream_id(cursor_str(position, "before")) if position is not None else None
    page = svc().policies.audit(args["limit"], before)
    last = page.next_before
    return {"items": page.items, "next_cursor": encode_cursor({"before": last}) if last else None}


@blp.route("/customers/<customer_id>/lockout", methods=["DELETE"])
@require_scope("admin")
@blp.response(204)
def unlock_customer(customer_id: str) -> None:
    """Unlock a customer: clear the lockout, the consecutive failures and their streak
    (the only way out after 100 consecutive failures). Idempotent."""
    svc().verification.unlock_customer(_check_id(customer_id), _who())


# -- factors (channel) --------------------------------------------------------------------
@blp.route("/customers/<customer_id>/factors", methods=["POST"])
@blp.doc(operationId="enrollFactor")
@require_scope("channel")
@blp.arguments(s.EnrollSchema())
@blp.response(201, s.FactorSchema())
def enroll(data: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """Enroll a factor: totp (secret + otpauth URI + QR), sms/email/voice_otp, kba."""
    return svc().enrollment.enroll(_check_id(customer_id), data)


@blp.route("/customers/<customer_id>/factors", methods=["GET"])
@require_scope("channel")
@blp.arguments(PageArgs(), location="query")
@blp.response(200, s.FactorListSchema())
def list_factors(args: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """The customer's factors, secrets and destinations masked."""
    return _page(svc().enrollment.list_factors(_check_id(customer_id)), args, "factor_id")


@blp.route("/customers/<customer_id>/factors/<factor_id>/confirm", methods=["POST"])
@blp.doc(operationId="confirmFactor")
@require_scope("channel")
@blp.arguments(s.ConfirmSchema())
@blp.response(200, s.FactorSchema())
def confirm(data: dict[str, Any], customer_id: str, factor_id: str) -> dict[str, Any]:
    """Activate a pending TOTP factor with its first code."""
    return svc().enrollment.confirm(_check_id(customer_id), factor_id, data)


@blp.route("/customers/<customer_id>/factors/<factor_id>", methods=["DELETE"])
@require_scope("channel")
@blp.response(204)
def remove_factor(customer_id: str, factor_id: str) -> None:
    """Remove a factor."""
    svc().enrollment.remove_factor(_check_id(customer_id), factor_id)


# -- verifications (channel) --------------------------------------------------------------
@blp.route("/verifications", methods=["POST"])
@blp.doc(operationId="startVerification")
@require_scope("channel")
@blp.arguments(s.StartSchema())
@blp.response(201, s.VerificationSchema())
@blp.alt_response(200, schema=s.VerificationSchema(), description="Approved by reusing a session")
def start(data: dict[str, Any]) -> Any:
    """Start a verification, or reuse a session that already satisfies the policy."""
    result = svc().verification.start(data)
    return result.body, result.status


@blp.route("/verifications/<verification_id>", methods=["GET"])
@require_scope("channel")
@blp.response(200, s.VerificationSchema())
def get_verification(verification_id: str) -> dict[str, Any]:
    """The state of a verification."""
    return svc().verification.get_verification(_vid(verification_id))


@blp.route("/verifications/<verification_id>/challenges", methods=["POST"])
@blp.doc(operationId="sendChallenge")
@answers(429)
@require_scope("channel")
@blp.arguments(s.ChallengeSchema())
@blp.response(200, s.ChallengeOutSchema())
def challenge(data: dict[str, Any], verification_id: str) -> dict[str, Any]:
    """Send a code (sms/email/voice), choose KBA questions, or submit a document."""
    return svc().verification.challenge(_vid(verification_id), data, client=_who())


@blp.route("/verifications/<verification_id>/checks", methods=["POST"])
@blp.doc(operationId="checkVerification")
@answers(423)
@require_scope("channel")
@blp.arguments(s.CheckSchema())
@blp.response(200, s.VerificationSchema())
def check(data: dict[str, Any], verification_id: str) -> dict[str, Any]:
    """Check a code or answers; approves and issues the session token when satisfied."""
    return svc().verification.check(_vid(verification_id), data).body


@blp.route("/documents/callback", methods=["POST"])
@answers(401, 409)
@blp.response(204)
@blp.doc(security=[])
def document_callback() -> None:
    """A document verifier's result, signed with X-Switchboard-Signature (HMAC-SHA256)."""
    svc().verification.document_result(
        request.get_data(),
        request.headers.get("X-Switchboard-Timestamp", ""),
        request.headers.get("X-Switchboard-Signature", ""),
    )


# -- sessions ------------------------------------------------------------------------------
@wk.route("/jwks.json")
@wk.doc(operationId="getJwks")
@wk.response(200, s.JwksSchema())
@wk.doc(security=[])
def jwks() -> dict[str, Any]:
    """The public keys session tokens are signed with (newest first)."""
    return svc().sessions.jwks()


@blp.route("/sessions/introspect", methods=["POST"])
@also_form(blp, s.TokenSchema())
@blp.doc(operationId="introspectToken")
@require_scope("ivr", "agent", "channel")
@blp.arguments(s.IntrospectSchema(), location=JSON_OR_FORM)
@blp.response(200, s.IntrospectionSchema())
def introspect(data: dict[str, Any]) -> dict[str, Any]:
    """RFC 7662: whether a session token is active, and its claims."""
    return svc().sessions.introspect(data["token"], data.get("device"))


@blp.route("/sessions/revoke", methods=["POST"])
@also_form(blp, s.TokenSchema())
@blp.doc(operationId="revokeToken")
@require_scope("channel", "ivr", "agent", "admin")
@blp.arguments(s.TokenSchema(), location=JSON_OR_FORM)
@blp.response(200, s.EmptySchema())
def revoke(data: dict[str, Any]) -> dict[str, Any]:
    """RFC 7009: revoke a session token (200 even for an unknown token)."""
    svc().sessions.revoke_token(data["token"])
    return {}


@blp.route("/sessions/<sid>", methods=["DELETE"])
@require_scope("channel", "agent", "admin")
@blp.response(204)
def delete_session(sid: str) -> None:
    """Revoke a session by its id."""
    svc().sessions.revoke_sid(_minted(sid, "s", "sid", "no active session with this id"))


@blp.route("/customers/<customer_id>/sessions/revoke-all", methods=["POST"])
@blp.doc(operationId="revokeAllSessions")
@require_scope("channel", "admin")
@blp.response(200, s.RevokedSchema())
def revoke_all(customer_id: str) -> dict[str, Any]:
    """Revoke every session of a customer."""
    return {"revoked": svc().sessions.revoke_all(_check_id(customer_id))}


@blp.route("/customers/<customer_id>/verification-status")
@require_scope("ivr", "agent")
@blp.arguments(s.StatusArgs(), location="query")
@blp.response(200, s.StatusSchema())
def verification_status(args: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """Whether the customer holds an active session satisfying the channel's policy."""
    return svc().sessions.verification_status(
        _check_id(customer_id), args["channel"], args.get("ani")
    )


# -- devices ------------------------------------------------------------------------------
@blp.route("/devices/fingerprint", methods=["POST"])
@blp.doc(operationId="fingerprintDevice")
@require_scope("channel")
@blp.arguments(s.FingerprintInSchema())
@blp.response(200, s.FingerprintSchema())
def fingerprint(data: dict[str, Any]) -> dict[str, Any]:
    """The keyed fingerprint of a device's normalised signals."""
    out = svc().devices.fingerprint(data["device"])
    return {
        "fingerprint": out["fingerprint"],
        "components": [f"{k}={v}" for k, v in sorted(out["components"].items())],
    }


@blp.route("/customers/<customer_id>/devices", methods=["GET"])
@require_scope("channel")
@blp.arguments(PageArgs(), location="query")
@blp.response(200, s.DeviceListSchema())
def list_devices(args: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """The customer's trusted devices."""
    return _page(svc().devices.devices(_check_id(customer_id)), args, "device_id")


@blp.route("/customers/<customer_id>/devices", methods=["POST"])
@require_scope("channel")
@blp.arguments(s.TrustSchema())
@blp.response(201, s.DeviceOutSchema())
def trust_device(data: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """Trust the device of an approved verification."""
    cid = _check_id(customer_id)
    vid = _minted(
        data["verification_id"], "v", "verification_id", "no such verification for this customer"
    )
    return svc().devices.trust_device(cid, vid)


@blp.route("/customers/<customer_id>/devices/<device_id>", methods=["DELETE"])
@require_scope("channel")
@blp.response(204)
def untrust_device(customer_id: str, device_id: str) -> None:
    """Stop trusting a device."""
    svc().devices.untrust_device(_check_id(customer_id), device_id)


# -- KPIs, export, dev ----------------------------------------------------------------------
@blp.route("/stats")
@blp.doc(operationId="getStats")
@require_scope("admin", "agent")
@blp.response(200, s.StatsSchema())
def stats() -> dict[str, Any]:
    """Repeat-verification rate, durations p50/p95, success rate per tier and channel."""
    return svc().reporting.stats()


@blp.route("/customers/<customer_id>/export")
@blp.doc(operationId="exportCustomer")
@require_scope("admin")
@blp.response(200, s.ExportSchema())
def export(customer_id: str) -> dict[str, Any]:
    """Everything identity holds on a customer, secrets masked (for the CRM's export)."""
    return svc().reporting.export(_check_id(customer_id))


@blp.route("/dev/messages")
@answers(404)
@require_scope("admin")
@blp.arguments(s.DevMessagesArgs(), location="query")
@blp.response(200, s.DevMessagesSchema())
def dev_messages(args: dict[str, Any]) -> dict[str, Any]:
    """Dev mode only: the last messages the dev delivery provider 'sent' (404 otherwise)."""
    outbox = svc().dev_outbox
    if outbox is None or not svc().config.dev_mode:
        raise e.NotFound("the dev outbox exists only in dev mode with the dev provider")
    return {"items": outbox.messages(args.get("to")), "next_cursor": None}
