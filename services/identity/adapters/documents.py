"""Document verifiers. ``sandbox`` decides deterministically from the number:

- a number ending in ``0`` is rejected (``reason: document_rejected``);
- a number ending in ``9`` stays pending (no callback ever comes);
- any other number is approved.

Results come back on ``POST /v1/documents/callback`` signed with
``X-Switchboard-Signature: sha256=HMAC(IDENTITY_DOCUMENT_SECRET, ts.body)``;
the sandbox can also post that callback itself (``callback_url``).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

from services.identity.adapters.breaker import BreakerOpen, CircuitBreaker
from services.identity.adapters.delivery import sign_body


class SandboxDocumentVerifier:
    name = "sandbox"

    def __init__(self, secret: bytes, callback_url: str = "", delay: float = 0.2) -> None:
        self.secret, self.callback_url, self.delay = secret, callback_url, delay

    @staticmethod
    def decide(number: str) -> str | None:
        if number.endswith("0"):
            return "rejected"
        if number.endswith("9"):
            return None
        return "approved"

    def result_body(self, reference: str, number: str) -> dict[str, Any] | None:
        outcome = self.decide(number)
        return None if outcome is None else {"reference": reference, "result": outcome}

    def submit(self, verification_id: str, document: Mapping[str, Any]) -> str:
        reference = "doc-" + uuid.uuid4().hex
        body = self.result_body(reference, str(document.get("number", "")))
        if body is not None and self.callback_url:
            threading.Thread(target=self._post, args=(body,), daemon=True).start()
        return reference

    def signed(self, body: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(dict(body)).encode()
        ts = str(int(time.time()))
        return raw, {
            "Content-Type": "application/json",
            "X-Switchboard-Timestamp": ts,
            "X-Switchboard-Signature": sign_body(self.secret, ts, raw),
        }

    def _post(self, body: Mapping[str, Any]) -> None:
        time.sleep(self.delay)
        raw, headers = self.signed(body)
        request = urllib.request.Request(
            self.callback_url, data=raw, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError:
            pass  # the verification stays pending; a real provider would retry


class VerifierUnavailable(BreakerOpen):
    """Not tried: the verifier failed too often lately (its circuit breaker is open)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the document verifier", retry_after)


class GuardedDocuments:
    """A document verifier behind a ``CircuitBreaker``: the same ``submit``, refused at
    once with ``VerifierUnavailable`` while the verifier keeps failing. Everything
    else is the verifier's own."""

    def __init__(self, verifier: Any, breaker: CircuitBreaker) -> None:
        self.verifier, self.breaker = verifier, breaker
        self.name = verifier.name

    def submit(self, verification_id: str, document: Mapping[str, Any]) -> str:
        reference = self.breaker.call(
            lambda: self.verifier.submit(verification_id, document), VerifierUnavailable
        )
        return str(reference)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.verifier, name)
