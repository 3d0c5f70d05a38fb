"""The built-in factors: totp, sms/email/voice OTP, kba, trusted_device, document."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import phonenumbers

from services.identity.domain import kba, otp
from services.identity.domain.errors import EnrollmentInvalid, FactorNotChallengeable
from services.identity.domain.factors import (
    Attempt,
    Enrollment,
    FactorEnv,
    FactorPlugin,
    FactorRecord,
)
from services.identity.factors.texts import code_message
from shared.i18n import DEFAULT_LANGUAGE

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}\Z")


def mask_phone(number: str) -> str:
    """+86*******8000: country code and last four digits."""
    cc = ""
    try:
        cc = "+" + str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        pass
    hidden = max(0, len(number) - len(cc) - 4)
    return cc + "*" * hidden + number[-4:]


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}{'*' * max(1, len(local) - 1)}@{domain}"


class TotpFactor(FactorPlugin):
    type = "totp"
    category = "possession"

    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        secret = otp.new_base32_secret()
        uri = otp.otpauth_uri(secret, customer_id, env.setting("totp_issuer", "Switchboard"))
        return Enrollment(
            data={"secret": secret},
            public={"secret": "*" * 8 + secret[-4:]},
            response={"secret": secret, "otpauth_uri": uri, "qr_png": env.qr_png_base64(uri)},
            status="pending",
        )

    def _accept(self, env: FactorEnv, record: FactorRecord, code: str) -> bool:
        step = env.match_totp(record.data["secret"], code)
        return step is not None and env.accept_step(record.factor_id, step)

    def confirm(self, env: FactorEnv, record: FactorRecord, params: Mapping[str, Any]) -> bool:
        return self._accept(env, record, str(params.get("code", "")))

    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        code = str(attempt.params.get("code") or "")
        return any(self._accept(env, record, code) for record in records)


class OtpFactor(FactorPlugin):
    """A 6-digit code sent to an enrolled destination."""

    category = "possession"
    needs_challenge = True

    def __init__(self, factor_type: str, channel: str) -> None:
        self.type = factor_type  # type: ignore[misc]
        self.channel = channel

    def _normalise(self, destination: str) -> str:
        if self.channel == "email":
            if not EMAIL.match(destination) or len(destination) > 254:
                raise EnrollmentInvalid(
                    "not an email address", {"destination": ["Not a valid email address."]}
                )
            return destination.strip()
        try:
            number = phonenumbers.parse(destination, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise EnrollmentInvalid(
                "not a phone number in E.164 form",
                {"destination": ["Give the number in E.164 form, e.g. +8613800138000."]},
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def mask(self, destination: str) -> str:
        return mask_email(destination) if self.channel == "email" else mask_phone(destination)

    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        raw = params.get("destination")
        if not isinstance(raw, str) or not raw.strip():
            raise EnrollmentInvalid(
                "a destination is required", {"destination": ["Missing data for required field."]}
            )
        destination = self._normalise(raw.strip())
        return Enrollment(
            data={"destination": destination}, public={"destination": self.mask(destination)}
        )

    def challenge(
        self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        wanted = attempt.params.get("factor_id")
        chosen = [r for r in records if wanted in (None, r.factor_id)]
        if not chosen:
            raise FactorNotChallengeable(f"no {self.type} destination is enrolled")
        record = chosen[0]
        destination = record.data["destination"]
        env.throttle(destination)  # raises Throttled: nothing is sent
        lifetime = int(env.setting("otp_lifetime", otp.OTP_DEFAULT_LIFETIME))
        code, issued = otp.issue_code(
            env.secret_key("otp"), attempt.verification_id, self.type, env.now(), lifetime
        )
        env.store_code(attempt.verification_id, self.type, asdict(issued), lifetime)
        language = attempt.language or env.setting("default_language", DEFAULT_LANGUAGE)
        message, extra = code_message(self.channel, code, lifetime, language)
        meta = {"verification_id": attempt.verification_id, "language": language, **extra}
        env.deliver(self.channel, destination, message, meta)
        public = {
            "factor": self.type,
            "delivery": {
                "channel": self.channel,
                "to": self.mask(destination),
                "language": language,
            },
            "expires_at": issued.expires_at,
        }
        return public, {"factor_id": record.factor_id}

    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        stored = env.peek_code(attempt.verification_id, self.type)
        if not stored:
            return False
        issued = otp.IssuedCode(**stored)
        result = otp.check_code(
            env.secret_key("otp"),
            issued,
            attempt.verification_id,
            self.type,
            str(attempt.params.get("code") or ""),
            env.now(),
        )
        return result is otp.CodeCheck.OK and env.consume_code(
            attempt.verification_id, self.type, issued.digest
        )


class KbaFactor(FactorPlugin):
    type = "kba"
    category = "knowledge"

    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        answers = params.get("answers")
        if not isinstance(answers, Mapping):
            raise EnrollmentInvalid(
                "answers are required", {"answers": ["Missing data for required field."]}
            )
        answers = kba.validate_answers(answers)
        hashed = {q: env.hash_answer(a) for q, a in answers.items()}
        return Enrollment(data={"answers": hashed}, public={"questions": sorted(answers)})

    def challenge(
        self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        enrolled = sorted({q for r in records for q in r.data["answers"]})
        if not enrolled:
            raise FactorNotChallengeable("no knowledge answers are enrolled")
        asked = attempt.params.get("questions") or enrolled
        unknown = sorted(set(asked) - set(enrolled))
        if unknown:
            raise FactorNotChallengeable(f"questions not enrolled: {', '.join(unknown)}")
        return {"factor": self.type, "questions": list(asked)}, {"questions": list(asked)}

    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        stored: dict[str, tuple[FactorRecord, str]] = {}  # a later record's answer wins
        for record in records:
            stored.update((q, (record, h)) for q, h in record.data["answers"].items())
        asked = list(attempt.challenge.get("questions") or sorted(stored))
        given = attempt.params.get("answers") or {}
        upgrades: dict[str, dict[str, str]] = {}
        results = []
        for qid in asked:  # every question is hashed, right or wrong: no early answer
            ok, new = False, None
            if qid in stored and isinstance(given.get(qid), str):
                ok, new = env.verify_answer(given[qid], stored[qid][1])
            results.append(ok)
            if new:
                upgrades.setdefault(stored[qid][0].factor_id, {})[qid] = new
        if not asked or not all(results):
            return False
        # Legacy (PBKDF2) hashes of a right answer become Argon2id, only while the record
        # is still the one read: a concurrent change wins, the next check upgrades.
        for record in records:
            if record.factor_id in upgrades:
                answers = {**record.data["answers"], **upgrades[record.factor_id]}
                env.update_factor_data(
                    attempt.customer_id, record, {**record.data, "answers": answers}
                )
        return True


class TrustedDeviceFactor(FactorPlugin):
    """Satisfied by the request's device, never by a code (see the verification flow)."""

    type = "trusted_device"
    category = "possession"
    enrollable = False

    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        raise EnrollmentInvalid(
            "devices are trusted through POST /v1/customers/{id}/devices",
            {"type": ["trusted_device is not enrolled here."]},
        )

    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        return False


class DocumentFactor(FactorPlugin):
    """An identity document checked by a verifier; the result arrives on a callback."""

    type = "document"
    category = "document"
    enrollable = False

    def enroll(self, env: FactorEnv, customer_id: str, params: Mapping[str, Any]) -> Enrollment:
        raise EnrollmentInvalid(
            "documents are checked during a verification", {"type": ["document is not enrolled."]}
        )

    def challenge(
        self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        document = attempt.params.get("document")
        if not isinstance(document, Mapping) or not document.get("number"):
            raise FactorNotChallengeable("a document {type, number, images} is required")
        reference = env.submit_document(attempt.verification_id, document)
        return (
            {"factor": self.type, "reference": reference, "status": "submitted"},
            {"reference": reference, "result": None},
        )

    def check(self, env: FactorEnv, attempt: Attempt, records: list[FactorRecord]) -> bool:
        return attempt.challenge.get("result") == "approved"

    def not_ready(self, attempt: Attempt) -> str | None:
        if not attempt.challenge.get("reference"):
            return 'no document was submitted: POST .../challenges {"factor": "document"}'
        if attempt.challenge.get("result") is None:
            return "the document verifier has not answered yet; check again after its result"
        return None
