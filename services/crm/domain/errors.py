"""The CRM's domain errors, one tree (mapped to problem documents at the HTTP edge).

CrmError
 ├── InvalidIdentifier          400  unparseable value or unknown type
 │    └── JunkIdentifier        400  placeholder values ("null", "0000000", ...)
 ├── NotFoundError              404
 │    ├── ProfileNotFound
 │    ├── CaseNotFound
 │    └── MergeNotFound
 ├── ConflictError              409
 │    ├── IdentifierTaken       an identifier already belongs to another profile
 │    ├── ResolutionConflict    identifiers resolve to two or more profiles
 │    ├── IdentifierSuppressed  erased recently; create explicitly
 │    └── MergeRefused          self-merge, merging a tombstone, unmerge out of order
 ├── ProfileMoved               308  the profile was merged into a survivor
 └── InvalidTransition          409  a case status change the workflow does not allow
"""

from __future__ import annotations

from collections.abc import Sequence


class CrmError(Exception):
    """Base of every CRM rule violation."""


class InvalidIdentifier(CrmError):
    def __init__(self, message: str, *, field: str = "identifiers") -> None:
        super().__init__(message)
        self.field = field


class JunkIdentifier(InvalidIdentifier):
    pass


class UnknownCategory(CrmError):
    """A category the classification rules do not define."""


class NotFoundError(CrmError):
    pass


class ProfileNotFound(NotFoundError):
    pass


class CaseNotFound(NotFoundError):
    pass


class MergeNotFound(NotFoundError):
    pass


class ConflictError(CrmError):
    def __init__(self, message: str, profile_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.profile_ids = list(profile_ids)


class IdentifierTaken(ConflictError):
    pass


class ResolutionConflict(ConflictError):
    pass


class IdentifierSuppressed(ConflictError):
    pass


class MergeRefused(ConflictError):
    pass


class InvalidTransition(ConflictError):
    pass


class ProfileMoved(CrmError):
    def __init__(self, profile_id: str, survivor_id: str) -> None:
        super().__init__(f"profile {profile_id} was merged into {survivor_id}")
        self.profile_id = profile_id
        self.survivor_id = survivor_id
