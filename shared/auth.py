"""Bearer API keys with scopes (API.md "Authentication")."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from flask import Flask, current_app, g, request

from shared.config import SCOPES, ApiKey, ConfigError, Settings
from shared.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_KEY = "SB_INTERNAL_API_KEY"
INTERNAL_CLIENT = "internal"


def accepted_keys(settings: Settings) -> tuple[ApiKey, ...]:
    """``API_KEYS`` plus the internal key this service is configured with, as the
    admin-scoped client ``internal``: the CRM calls identity and routing with it, and
    an operator's ``API_KEYS`` rarely repeats it. Contradictions stop the service."""
    digest = hashlib.sha256(settings.secret(INTERNAL_KEY).encode()).digest()
    same = [k for k in settings.api_keys if hmac.compare_digest(k.secret_sha256, digest)]
    if same:  # listed by the operator (as `make run` does): it must be able to export
        key = same[-1]  # the one authenticate() settles on
        if "admin" not in key.scopes or key.agent is not None:
            raise ConfigError(
                f"{INTERNAL_KEY} is the secret of API_KEYS client {key.client!r}, which is "
                "not an unbound admin key; give that entry the admin scope (no agent) or "
                f"set {INTERNAL_KEY} to a secret of its own"
            )
        return settings.api_keys
    if any(k.client == INTERNAL_CLIENT for k in settings.api_keys):
        raise ConfigError(
            f"API_KEYS names a client {INTERNAL_CLIENT!r} whose secret is not {INTERNAL_KEY}; "
            f"that name is the internal key's: rename the entry, or set {INTERNAL_KEY} "
            "to its secret"
        )
    return (*settings.api_keys, ApiKey(INTERNAL_CLIENT, digest, frozenset({"admin"})))


def install(app: Flask, settings: Settings) -> None:
    # Resolved now: a contradictory configuration stops the service at start.
    app.extensions["sb_api_keys"] = accepted_keys(settings)


def app_keys() -> tuple[ApiKey, ...]:
    """The keys the running app accepts (see ``install``)."""
    return current_app.extensions["sb_api_keys"]  # type: ignore[no-any-return]


def authenticate(keys: Sequence[ApiKey], header: str | None) -> ApiKey:
    """The key whose secret the header carries; compares every key in constant time.

    ``Bearer <secret>`` or, as OAuth clients authenticate (RFC 6749 2.3.1, the way
    RFC 7662 / RFC 7009 clients call introspection and revocation), ``Basic`` of
    ``client:secret``: then the client name must be the key's too. Accepted on every
    route: it is the same key, only spelt the way standard clients spell it."""
    scheme, _, credentials = (header or "").partition(" ")
    client: bytes | None = None
    if scheme.lower() == "basic":
        client, secret = _basic(credentials.strip())
    elif scheme == "Bearer" and credentials:
        secret = credentials.strip()
    else:
        raise Unauthorized("a bearer API key (or Basic client:secret) is required")
    presented = hashlib.sha256(secret.encode()).digest()
    found: ApiKey | None = None
    for key in keys:
        # No early exit: the time taken does not depend on which key matched.
        same_secret = hmac.compare_digest(presented, key.secret_sha256)
        same_client = client is None or hmac.compare_digest(client, key.client.encode())
        if same_secret and same_client:
            found = key
    if found is None:
        raise Unauthorized("the API key is not valid")
    return found


def _basic(credentials: str) -> tuple[bytes, str]:
    """``client`` and ``secret`` of Basic credentials: base64 of ``client:secret``, each
    part form-urlencoded first (RFC 6749 2.3.1; a plain RFC 7617 pair decodes the same
    unless it holds ``%`` or ``+``)."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not base64 of client:secret") from None
    client, colon, secret = decoded.partition(":")
    if not colon:
        raise Unauthorized("the Basic credentials are not base64 of client:secret")
    return unquote_plus(client).encode(), unquote_plus(secret)


def current_client() -> ApiKey | None:
    key: ApiKey | None = g.get("sb_client")
    return key


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
                key = authenticate(app_keys(), request.headers.get("Authorization"))
                g.sb_client = key
            if not key.scopes.intersection(scopes):
                raise Forbidden(f"this endpoint needs the scope {' or '.join(scopes)}")
            return view(*args, **kwargs)

        wrapper._sb_scopes = scopes  # type: ignore[attr-defined]  # read by the OpenAPI wiring
        return wrapper  # type: ignore[return-value]

    return decorate
