"""One webhook POST over ``http.client``, to the address the SSRF check approved.

The standard library, not httpx: what is needed is one POST without redirects (a
redirect could point anywhere, so a 3xx is a failure) to a pinned address, with the
host name kept for the ``Host`` header, SNI and certificate checks; ``http.client``
does that with one override and no new runtime dependency.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from shared.webhooks.targets import Target

MAX_RESPONSE_READ = 64 * 1024  # read (and drop) so the connection closes cleanly


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    started = time.monotonic()
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    address = target.address

    def pinned(addr: Any, timeout: Any = None, source_address: Any = None) -> socket.socket:
        return socket.create_connection((address, addr[1]), timeout, source_address)

    conn._create_connection = pinned  # type: ignore[attr-defined]  # the checked address
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "user-agent": "Switchboard-Webhooks/1"},
        )
        response = conn.getresponse()
        response.read(MAX_RESPONSE_READ)
        status = response.status
        ok = 200 <= status < 300
        return Outcome(ok, status, None if ok else f"HTTP {status}", _ms(started))
    except TimeoutError:
        return Outcome(False, None, "timeout", _ms(started))
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, type(exc).__name__, _ms(started))
    finally:
        conn.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
