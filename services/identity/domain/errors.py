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


class PolicyInvalid(IdentityError):
    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {k: list(v) for k, v in errors.items()}
        super().__init__("the tier policy is not valid")


class PolicyProtected(IdentityError):
    pass


class EnrollmentInvalid(IdentityError):
    def __init__(self, message: str, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        super().__init__(message)


class UnknownFactorType(IdentityError):
    pass


class NotFound(IdentityError):
    pass


class FactorNotChallengeable(IdentityError):
    pass


class VerificationClosed(IdentityError):
    pass


class CustomerLocked(IdentityError):
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
    def __init__(self, retry_after: int, message: str = "too many codes sent") -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


class DeliveryPolicyInvalid(PolicyInvalid):
    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        super().__init__(errors)
        self.args = ("the delivery policy is not valid",)


class DeliveryNotAllowed(IdentityError):
    """A send the delivery policy refuses; ``reason`` is one of delivery_policy's."""

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
    pass


class CodeRejected(IdentityError):
    """A confirmation code that does not match (enrollment confirm)."""


class FactorNotAllowed(IdentityError):
    """The factor does not count for this tier on this channel."""


class DeviceNotTrustable(IdentityError):
    """A voice line, a flagged fingerprint, or a verification that was not approved."""


class FactorNotReady(IdentityError):
    """A check asked before its factor can be judged (a document result still awaited)."""


class DocumentSuperseded(IdentityError):
    """A document result whose reference is not the verification's current submission."""


class _DependencyUnavailable(IdentityError):
    """An external service did not take the request (503, retry later)."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        self.retry_after = retry_after  # known when the service's circuit breaker is open
        super().__init__(message)


class DocumentsUnavailable(_DependencyUnavailable):
    """The document verifier could not take the document (503, retry later)."""


class DeliveryUnavailable(_DependencyUnavailable):
    """The delivery provider could not hand the code over (503, retry later)."""


class StepTaken(Exception):
    """Internal, never an answer: a TOTP time step this check would have used was accepted
    by a concurrent one first, so this check failed (the replay guard)."""
