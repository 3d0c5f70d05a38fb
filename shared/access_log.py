"""One JSON line per HTTP request (logger ``sb.access``, level INFO): method, route (the
URL rule, e.g. ``/v1/verifications/<verification_id>``), status, duration and, from the
JSON formatter, the request id. Never the raw path, its query string or the body: they
carry customer ids, phone numbers and codes. ``LOG_LEVEL=WARNING`` turns it off."""

from __future__ import annotations

import logging

log = logging.getLogger("sb.access")


def log_request(method: str, route: str, status: int, seconds: float) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_seconds": round(seconds, 6),
            },
        )
