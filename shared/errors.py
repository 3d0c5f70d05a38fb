"""Errors rendered as RFC 7807 problem documents.

ProblemError
 ├── BadRequest            400
 ├── Unauthorized          401
 ├── Forbidden             403
 ├── NotFound              404
 ├── Conflict              409
 ├── PermanentRedirect     308 (with Location)
 ├── Locked                423
 ├── TooManyRequests       429 (with Retry-After)
 └── ServiceUnavailable    503
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_BASE = "https://switchboard.dev/problems/"
PROBLEM_MIMETYPE = "application/problem+json"


class ProblemError(Exception):
    status = 500
    title = "Internal Server Error"
    slug = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        type: str | None = None,  # noqa: A002 - RFC 7807 member name
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title)
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.detail = detail or self.title
        self.type = type or PROBLEM_BASE + self.slug
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


class BadRequest(ProblemError):
    status, title, slug = 400, "Bad Request", "bad-request"


class ValidationFailed(BadRequest):
    title, slug = "Validation Failed", "validation"


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="switchboard"'})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class PermanentRedirect(ProblemError):
    status, title, slug = 308, "Permanent Redirect", "moved"

    def __init__(self, location: str, detail: str | None = None, **kw: Any) -> None:
        headers = dict(kw.pop("headers", {}) or {})
        headers["Location"] = location
        extra = dict(kw.pop("extra", {}) or {})
        extra.setdefault("location", location)
        super().__init__(detail, headers=headers, extra=extra, **kw)


class Locked(ProblemError):
    status, title, slug = 423, "Locked", "locked"


class TooManyRequests(ProblemError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        headers = dict(kw.pop("headers", {}) or {})
        headers["Retry-After"] = str(max(1, int(retry_after)))
        extra = dict(kw.pop("extra", {}) or {})
        extra.setdefault("retry_after", max(1, int(retry_after)))
        super().__init__(detail, headers=headers, extra=extra, **kw)


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service Unavailable", "unavailable"
