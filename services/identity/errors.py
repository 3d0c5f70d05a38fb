"""Identity's error tree, as the template names it (docs/architecture.md).

The classes live in ``domain/errors.py`` because the domain's rules raise them and the
domain imports nothing outside itself; each carries its answer as class attributes
(``status``, ``slug``, ``title``), which the one shared handler of ``shared.app``
(``described_problem``) renders as the problem document. No map of its own here.
"""

from __future__ import annotations

from services.identity.domain.errors import (
    CodeRejected,
    CustomerLocked,
    DeliveryNotAllowed,
    DeliveryPolicyInvalid,
    DeliveryThrottled,
    DeliveryUnavailable,
    DeviceNotTrustable,
    DocumentsUnavailable,
    DocumentSuperseded,
    EnrollmentInvalid,
    FactorNotAllowed,
    FactorNotChallengeable,
    FactorNotReady,
    IdentityError,
    InvalidSignature,
    NotFound,
    PolicyInvalid,
    PolicyProtected,
    StepTaken,
    Throttled,
    UnknownFactorType,
    VerificationClosed,
)

__all__ = [
    "CodeRejected",
    "CustomerLocked",
    "DeliveryNotAllowed",
    "DeliveryPolicyInvalid",
    "DeliveryThrottled",
    "DeliveryUnavailable",
    "DeviceNotTrustable",
    "DocumentSuperseded",
    "DocumentsUnavailable",
    "EnrollmentInvalid",
    "FactorNotAllowed",
    "FactorNotChallengeable",
    "FactorNotReady",
    "IdentityError",
    "InvalidSignature",
    "NotFound",
    "PolicyInvalid",
    "PolicyProtected",
    "StepTaken",
    "Throttled",
    "UnknownFactorType",
    "VerificationClosed",
]
