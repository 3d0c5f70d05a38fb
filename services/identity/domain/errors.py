"""Errors of the identity domain, one tree (the HTTP layer maps them to problems).

IdentityError
 ├── PolicyInvalid          400  a tier policy that cannot be satisfied or is malformed
 ├── PolicyProtected        409  the default tier cannot be deleted
 ├── EnrollmentInvalid      400  bad enrollment input (unknown question id, ...)
 ├── UnknownFactorType      400  no plugin registered for the type
 ├── NotFound               404  policy, factor, verification, device, session
 ├── FactorNotChallengeable 400  the factor takes no challenge / is not enrolled
 ├── VerificationClosed     409  the verification is already approved, failed or expired
 ├── CustomerLocked         423  too many consecutive failures
 ├── Throttled              429  too many codes sent to one destination
 ├── InvalidSignature       401  a provider callback without a valid HMAC
 ├── CodeRejected           400  a wrong code when confirming an enrollment
 ├── FactorNotAllowed       400  the factor does not count on this channel
 ├── DeviceNotTrustable     409  voice line, flagged fingerprint, unapproved verification
 ├── DocumentSuperseded     409  a result for a document that is no longer the current one
 ├── DeliveryNotAllowed     403  the delivery policy refuses this destination (fraud guard)
 ├── DeliveryThrottled      429  a velocity limit of the delivery policy (a Throttled)
 ├── DeliveryUnavailable    503  the delivery provider did not take the message
 └── DocumentsUnavailable   503  the document verifier did not take the document
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class IdentityError(Exception):
    """Base of every identity domain error."""

    status = 400
    slug = "bad-request"
    title = "Bad Request"


class PolicyInvalid(IdentityError):
    status = 400
    slug = "invalid-policy"
    title = "Invalid Policy"

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {k: list(v) for k, v in errors.items()}
        super().__init__("the tier policy is not valid")


class PolicyProtected(IdentityError):
    status = 409
    slug = "protected-policy"
    title = "Protected Policy"


class EnrollmentInvalid(IdentityError):
    status = 400
    slug = "invalid-enrollment"
    title = "Invalid Enrollment"

    def __init__(self, message: str, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        super().__init__(message)


class UnknownFactorType(IdentityError):
    status = 400
    slug = "unknown-factor-type"
    title = "Unknown Factor Type"


class NotFound(IdentityError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class FactorNotChallengeable(IdentityError):
    status = 400
    slug = "factor-not-available"
    title = "Factor Not Available"


class VerificationClosed(IdentityError):
    status = 409
    slug = "verification-closed"
    title = "Verification Closed"


class CustomerLocked(IdentityError):
    status = 423
    slug = "locked"
    title = "Locked"

    def __init__(self, retry_after: int, held: bool = False) -> None:
        # Held (100 consecutive failures): no Retry-After, since only an administrator lifts it.
        self.retry_after: int | None = None if held else max(1, int(retry_after))
        self.held = held
        super().__init__(
            "too many consecutive failed attempts; an administrator must unlock this customer"
            if held
            else "too many failed attempts; try again later"
        )


class Throttled(IdentityError):
    status = 429
    slug = "too-many-requests"
    title = "Too Many Requests"

    def __init__(self, retry_after: int, message: str = "too many codes sent") -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


class DeliveryPolicyInvalid(PolicyInvalid):
    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__(errors)
        self.args = ("the delivery policy is not valid",)


class DeliveryNotAllowed(IdentityError):
    """A send the delivery policy refuses; ``reason`` is one of delivery_policy's."""

    status = 403
    slug = "delivery-not-allowed"
    title = "Delivery Not Allowed"

    def __init__(self, reason: str, message: str, retry_after: int | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        self.extra = {"reason": reason}
        super().__init__(message)


class DeliveryThrottled(Throttled):
    def __init__(self, reason: str, retry_after: int, message: str) -> None:
        super().__init__(retry_after, message)
        self.reason = reason
        self.extra = {"reason": reason}


class InvalidSignature(IdentityError):
    status = 401
    slug = "invalid-signature"
    title = "Invalid Signature"


class CodeRejected(IdentityError):
    """A confirmation code that does not match (enrollment confirm)."""

    status = 400
    slug = "code-rejected"
    title = "Code Rejected"


class FactorNotAllowed(IdentityError):
    """The factor does not count for this tier on this channel."""

    status = 400
    slug = "factor-not-allowed"
    title = "Factor Not Allowed"


class DeviceNotTrustable(IdentityError):
    """A voice line, a flagged fingerprint, or a verification that was not approved."""

    status = 409
    slug = "device-not-trustable"
    title = "Device Not Trustable"


class FactorNotReady(IdentityError):
    """A check asked before its factor can be judged (a document result still awaited)."""

    status = 409
    slug = "factor-not-ready"
    title = "Factor Not Ready"


class DocumentSuperseded(IdentityError):
    """A document result whose reference is not the verification's current submission."""

    status = 409
    slug = "document-superseded"
    title = "Document Superseded"


class _DependencyUnavailable(IdentityError):
    """An external service did not take the request (503, retry later)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        self.retry_after = retry_after  # known when the service's circuit breaker is open
        super().__init__(message)


class DocumentsUnavailable(_DependencyUnavailable):
    """The document verifier could not take the document (503, retry later)."""

    status = 503
    slug = "document-verifier-unavailable"
    title = "Document Verifier Unavailable"


class DeliveryUnavailable(_DependencyUnavailable):
    """The delivery provider could not hand the code over (503, retry later)."""

    status = 503
    slug = "delivery-unavailable"
    title = "Delivery Unavailable"


class StepTaken(Exception):
    """Internal, never an answer: a TOTP time step this check would have used was accepted
    by a concurrent one first, so this check failed (the replay guard)."""
