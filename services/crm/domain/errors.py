"""The CRM's domain errors, one tree; each class names how it is answered.

Pure: plain class attributes ``status``, ``slug`` (the problem type's last part) and
``title``, which ``shared.app.described_problem`` renders as RFC 7807 documents; the
service's own (infrastructure) errors are in ``services.crm.errors``.

CrmError                        400  bad-request
 ├── InvalidIdentifier          400  invalid-identifier (errors: {field: [...]})
 │    └── JunkIdentifier        400  placeholder values ("null", "0000000", ...)
 ├── InvalidCaseNumber          400  invalid-case-number (domain.case_numbers)
 ├── UnknownCategory            400  bad-request
 ├── NotFoundError              404  not-found
 │    ├── ProfileNotFound
 │    ├── CaseNotFound
 │    └── MergeNotFound
 ├── ConflictError              409  conflict (profile_ids)
 │    ├── IdentifierTaken            identifier-taken: belongs to another profile
 │    ├── ResolutionConflict         merge-candidate: identifiers name two profiles
 │    ├── IdentifierSuppressed       identifier-suppressed: erased recently
 │    ├── MergeRefused               merge-refused: self-merge, tombstone, out of order
 │    └── InvalidTransition          invalid-transition (no profile_ids)
 └── ProfileMoved               308  moved: Location of the survivor, survivor_id
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CrmError(Exception):
    """Base of every CRM rule violation."""

    status = 400
    slug = "bad-request"
    title = "Bad Request"


class InvalidIdentifier(CrmError):
    slug = "invalid-identifier"
    title = "Invalid Identifier"

    def __init__(self, message: str, *, field: str = "identifiers") -> None:
        super().__init__(message)
        self.field = field

    @property
    def errors(self) -> dict[str, list[str]]:
        return {self.field: [str(self)]}


class JunkIdentifier(InvalidIdentifier):
    pass


class UnknownCategory(CrmError):
    """A category the classification rules do not define."""


class NotFoundError(CrmError):
    status = 404
    slug = "not-found"
    title = "Not Found"


class ProfileNotFound(NotFoundError):
    pass


class CaseNotFound(NotFoundError):
    pass


class MergeNotFound(NotFoundError):
    pass


class ConflictError(CrmError):
    status = 409
    slug = "conflict"
    title = "Conflict"

    def __init__(self, message: str, profile_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.profile_ids = list(profile_ids)

    @property
    def extra(self) -> dict[str, Any]:
        return {"profile_ids": self.profile_ids}


class IdentifierTaken(ConflictError):
    slug = "identifier-taken"


class ResolutionConflict(ConflictError):
    slug = "merge-candidate"


class IdentifierSuppressed(ConflictError):
    slug = "identifier-suppressed"


class MergeRefused(ConflictError):
    slug = "merge-refused"


class InvalidTransition(ConflictError):
    slug = "invalid-transition"
    title = "Invalid Status Change"

    @property
    def extra(self) -> dict[str, Any]:
        return {}  # a case's workflow, not a profile's: no profile_ids member


class ProfileMoved(CrmError):
    status = 308
    slug = "moved"
    title = "Permanent Redirect"

    def __init__(self, profile_id: str, survivor_id: str) -> None:
        super().__init__(f"profile {profile_id} was merged into {survivor_id}")
        self.profile_id = profile_id
        self.survivor_id = survivor_id

    @property
    def extra(self) -> dict[str, Any]:
        return {"survivor_id": self.survivor_id}

    def relocate(self, path: str) -> str:
        """The same request on the survivor (its sub-resources included)."""
        return path.replace(f"/profiles/{self.profile_id}", f"/profiles/{self.survivor_id}", 1)
