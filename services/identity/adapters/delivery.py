"""Delivery providers for one-time codes: dev (Redis outbox), webhook, smtp.

Every provider implements ``send(channel, to, message, meta) -> message id``
and raises ``DeliveryFailed`` when the message could not be handed over
(``DeliveryRejected`` when the provider answered and refused this message).

``GuardedDelivery`` puts a circuit breaker (``breaker.py``) in front of a
provider.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from services.identity.adapters.breaker import BreakerOpen, CircuitBreaker
from shared.i18n import choose, translate

log = logging.getLogger("sb.identity.delivery")
DEV_OUTBOX = "idn:dev:outbox"
DEV_KEPT = 50
DEV_TTL = 600


class DeliveryFailed(Exception):
    pass


class DeliveryRejected(DeliveryFailed):
    """The provider answered and refused this message (a 4xx, a refused recipient): the
    gateway works, so the circuit breaker does not count it against it."""


class GatewayUnavailable(DeliveryFailed, BreakerOpen):
    """Not tried: the provider failed too often lately (its circuit breaker is open)."""

    def __init__(self, retry_after: int) -> None:
        BreakerOpen.__init__(self, "the delivery gateway", retry_after)


class DevDelivery:
    """``make run`` only: keeps the last messages in Redis for GET /v1/dev/messages.

    Codes are never logged; the outbox holds the last 50 messages for 10 minutes.
    """

    name = "dev"

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def send(self, channel: str, to: str, message: str, meta: Mapping[str, Any]) -> str:
        mid = uuid.uuid4().hex
        entry = {
            "id": mid,
            "channel": channel,
            "to": to,
            "message": message,
            "sent_at": time.time(),
            **{k: str(v) for k, v in meta.items()},
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(DEV_OUTBOX, json.dumps(entry))
            pipe.ltrim(DEV_OUTBOX, 0, DEV_KEPT - 1)
            pipe.expire(DEV_OUTBOX, DEV_TTL)
            pipe.execute()
        log.info("dev delivery", extra={"channel": channel, "message_id": mid})
        return mid

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        rows = [json.loads(r) for r in self.redis.lrange(DEV_OUTBOX, 0, -1)]
        return [r for r in rows if to is None or r["to"] == to]


def sign_body(secret: bytes, timestamp: str, body: bytes) -> str:
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class WebhookDelivery:
    """POSTs JSON to a gateway with ``X-Switchboard-Signature: sha256=HMAC(ts.body)``.

    Retries connection errors and 5xx with exponential backoff; a 4xx is final.
    """

    name = "webhook"

    def __init__(
        self, url: str, secret: bytes, *, retries: int = 3, backoff: float = 0.2, timeout: float = 5
    ) -> None:
        self.url, self.secret = url, secret
        self.retries, self.backoff, self.timeout = retries, backoff, timeout

    def send(self, channel: str, to: str, message: str, meta: Mapping[str, Any]) -> str:
        mid = uuid.uuid4().hex
        body = json.dumps(
            {"id": mid, "channel": channel, "to": to, "message": message, **dict(meta)}
        ).encode()
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            ts = str(int(time.time()))
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-Switchboard-Timestamp": ts,
                    "X-Switchboard-Signature": sign_body(self.secret, ts, body),
                    "Idempotency-Key": mid,
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    response.read()
                return mid
            except urllib.error.HTTPError as exc:
                last = exc
                if exc.code < 500:
                    log.warning("webhook refused the message", extra={"status": exc.code})
                    raise DeliveryRejected(f"the delivery gateway refused it ({exc.code})") from exc
            except (urllib.error.URLError, OSError) as exc:
                last = exc
        log.warning("webhook delivery failed", extra={"channel": channel, "error": repr(last)})
        raise DeliveryFailed("the delivery gateway did not accept the message")


class SmtpDelivery:
    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout: float = 10,
    ) -> None:
        self.host, self.port, self.sender, self.starttls = host, port, sender, starttls
        self.username, self.password, self.timeout = username, password, timeout

    def send(self, channel: str, to: str, message: str, meta: Mapping[str, Any]) -> str:
        mid = uuid.uuid4().hex
        email = EmailMessage()
        email["From"], email["To"] = self.sender, to
        language = choose(str(meta.get("language") or ""))
        subject = meta.get("subject") or translate("Your verification code", language)
        email["Subject"], email["Message-ID"] = str(subject), f"<{mid}@switchboard>"
        # base64 for Chinese: 8-bit text only passes a server that offers 8BITMIME.
        email.set_content(message, cte=None if message.isascii() else "base64")
        email["Content-Language"] = language  # after set_content, which drops Content-*
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            log.warning("smtp refused the recipient", extra={"error": type(exc).__name__})
            raise DeliveryRejected("the mail server refused the recipient") from exc
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("smtp delivery failed", extra={"error": type(exc).__name__})
            raise DeliveryFailed("the mail server did not accept the message") from exc
        return mid


class GuardedDelivery:
    """A provider behind a ``CircuitBreaker``: the same ``send``, refused at once with
    ``GatewayUnavailable`` while the provider keeps failing."""

    def __init__(self, provider: Any, breaker: CircuitBreaker) -> None:
        self.provider, self.breaker = provider, breaker
        self.name = provider.name

    def send(self, channel: str, to: str, message: str, meta: Mapping[str, Any]) -> str:
        mid = self.breaker.call(
            lambda: self.provider.send(channel, to, message, meta),
            GatewayUnavailable,
            healthy=(DeliveryRejected,),  # the gateway answered: it works
        )
        return str(mid)
