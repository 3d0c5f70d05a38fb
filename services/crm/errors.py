"""Every error the CRM answers with, in one place; each class names its status and
problem type (``shared.app.described_problem`` renders them, no map of our own).

The rule violations are the domain's (``services.crm.domain.errors``, re-exported
here). Beside them, what the use cases and adapters raise:

RateLimited                     429  rate-limited (Retry-After, retry_after)
CrmUnavailable                  503  unavailable (Retry-After)
 ├── Contention                 a concurrent writer won every retry
 ├── PeerUnavailable            another service's export did not answer (5 s)
 └── StoreUnavailable           the database did not answer
LookupFailed (CaseNotFound)     404  not-found, whichever part of a lookup was wrong
"""

from __future__ import annotations

from services.crm.domain.case_numbers import InvalidCaseNumber
from services.crm.domain.errors import (
    CaseNotFound,
    ConflictError,
    CrmError,
    IdentifierSuppressed,
    IdentifierTaken,
    InvalidIdentifier,
    InvalidTransition,
    JunkIdentifier,
    MergeNotFound,
    MergeRefused,
    NotFoundError,
    ProfileMoved,
    ProfileNotFound,
    ResolutionConflict,
    UnknownCategory,
)

__all__ = [
    "CaseNotFound",
    "ConflictError",
    "Contention",
    "CrmError",
    "CrmUnavailable",
    "IdentifierSuppressed",
    "IdentifierTaken",
    "InvalidCaseNumber",
    "InvalidIdentifier",
    "InvalidTransition",
    "JunkIdentifier",
    "LookupFailed",
    "MergeNotFound",
    "MergeRefused",
    "NotFoundError",
    "PeerUnavailable",
    "ProfileMoved",
    "ProfileNotFound",
    "RateLimited",
    "ResolutionConflict",
    "StoreUnavailable",
    "UnknownCategory",
]


class RateLimited(Exception):
    status = 429
    slug = "rate-limited"
    title = "Too Many Requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many lookups; retry in {retry_after} s")
        self.retry_after = max(1, int(retry_after))


class CrmUnavailable(Exception):
    """Worth a retry. The message stays diagnostic (logs); ``detail`` is what callers read."""

    status = 503
    slug = "unavailable"
    title = "Service Unavailable"
    headers = {"Retry-After": "1"}


class Contention(CrmUnavailable):
    """A concurrent writer won a race (unique key, lock); the use case is retried, and
    only when writers won every retry does the caller see it."""

    detail = "the customer's data is changing concurrently; retry"


class PeerUnavailable(CrmUnavailable):
    """Another service's export endpoint did not answer."""

    headers = {"Retry-After": "5"}

    @property
    def detail(self) -> str:
        return f"the export is incomplete, so none is given: {self}"


class StoreUnavailable(CrmUnavailable):
    """The database did not answer (restart, network); the request may be retried."""

    detail = "the database is unavailable"


class LookupFailed(CaseNotFound):
    """One answer whichever part was wrong, so nothing can be enumerated."""

    def __init__(self) -> None:
        super().__init__("no case matches this case number and phone number")
