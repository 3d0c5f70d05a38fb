"""The pure part of outgoing webhooks: patterns, backoff, secrets, signatures.

Signatures follow the Standard Webhooks specification: the secret is ``whsec_`` and the
base64 of 24 to 64 random bytes; the signed content is ``<webhook-id>.<webhook-timestamp>.<body>``;
the header is ``v1,<base64 of HMAC-SHA256>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24  # the specification's range
MAX_SECRET_BYTES = 64

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
_SEGMENT = re.compile(r"^(?:[a-z0-9_]+|\*)\Z")
MAX_PATTERNS = 50


class InvalidWebhook(ValueError):
    """A subscription that cannot be accepted; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- event-type patterns ------------------------------------------------------------
def check_pattern(pattern: str, service: str) -> str:
    """A pattern is dot-separated segments; ``*`` is one segment, or, last, any number
    (one or more) of them: ``crm.case.*``, ``crm.*.created``, ``*``. One that cannot
    match this service's events (they all begin with its name) is refused."""
    segments = pattern.split(".")
    if len(pattern) > 200 or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidWebhook(
            "events", f"{pattern!r}: dot-separated lowercase segments or '*', e.g. crm.case.*"
        )
    if segments[0] not in ("*", service):
        raise InvalidWebhook("events", f"{pattern!r}: this service's events begin with {service!r}")
    return pattern


def matches(pattern: str, event_type: str) -> bool:
    wanted = pattern.split(".")
    actual = event_type.split(".")
    for i, segment in enumerate(wanted):
        last = i == len(wanted) - 1
        if segment == "*" and last:
            return len(actual) > i
        if i >= len(actual) or (segment != "*" and segment != actual[i]):
            return False
    return len(actual) == len(wanted)


def matches_any(patterns: Sequence[str], event_type: str) -> bool:
    return any(matches(p, event_type) for p in patterns)


# -- retries ----------------------------------------------------------------------
@dataclass(frozen=True)
class Backoff:
    """Exponential: ``base * 2**(attempt-1)`` seconds, at most ``cap``; after ``period``
    seconds of failing on one event the subscription is disabled."""

    base: float = 5.0
    cap: float = 3600.0
    period: float = 86400.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed attempt (1-based)."""
        return float(min(self.cap, self.base * 2 ** min(max(attempt - 1, 0), 40)))

    def exhausted(self, first_failure: float, now: float) -> bool:
        return now - first_failure >= self.period


# -- secrets and signatures ---------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for; InvalidWebhook when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidWebhook("secret", "a secret is 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidWebhook("secret", "a secret is 'whsec_' followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidWebhook(
            "secret", f"the secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes"
        )
    return key


def mask(secret: str) -> str:
    """What is shown of a secret after its creation: enough to tell two apart."""
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }
