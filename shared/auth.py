"""Bearer API keys with scopes (API.md "Authentication")."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask import current_app, g, request

from shared.config import SCOPES, ApiKey
from shared.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])


def authenticate(keys: Sequence[ApiKey], header: str | None) -> ApiKey:
    """The key whose secret the header carries; compares every key in constant time."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("a bearer API key is required")
    presented = hashlib.sha256(header[len("Bearer ") :].strip().encode()).digest()
    found: ApiKey | None = None
    for key in keys:
        # No early exit: the time taken does not depend on which key matched.
        if hmac.compare_digest(presented, key.secret_sha256):
            found = key
    if found is None:
        raise Unauthorized("the API key is not valid")
    return found


def current_client() -> ApiKey | None:
    return g.get("sb_client")


def bound_agent() -> str | None:
    """The agent the caller's key is bound to (API.md B), None for an unbound key."""
    key: ApiKey | None = g.get("sb_client")
    return key.agent if key is not None else None


def require_scope(*scopes: str) -> Callable[[F], F]:
    """The caller must hold at least one of ``scopes``."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {sorted(unknown)}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = g.get("sb_client")
            if key is None:
                key = authenticate(
                    current_app.extensions["sb"].settings.api_keys,
                    request.headers.get("Authorization"),
                )
                g.sb_client = key
            if not key.scopes.intersection(scopes):
                raise Forbidden(f"this endpoint needs the scope {' or '.join(scopes)}")
            return view(*args, **kwargs)

        wrapper._sb_scopes = scopes  # type: ignore[attr-defined]  # read by the OpenAPI wiring
        return wrapper  # type: ignore[return-value]

    return decorate
