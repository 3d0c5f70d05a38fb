"""gunicorn's own log lines (its start, worker boots and deaths, timeouts) as JSON, with
the formatter every Switchboard process uses (shared/logs.py): a log pipeline reads one
format per file. Selected by ``--logger-class`` (shared/serving.py).

gunicorn's access log stays off: the app writes one ``sb.access`` line per request
(shared/access_log.py), which knows what gunicorn does not (the URL rule rather than the
raw path with its query string, the request id)."""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

from shared.logs import JsonFormatter

__all__ = ["JsonLogger", "service_of"]


def service_of(proc_name: str | None) -> str:
    """``services.identity.app:create_app()`` -> ``identity``; gunicorn's process name
    when it names no Switchboard service."""
    found = re.match(r"services\.(\w+)\.", proc_name or "")
    return found.group(1) if found else (proc_name or "gunicorn")


class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    def _set_handler(
        self, log: logging.Logger, output: Any, fmt: logging.Formatter, stream: Any = None
    ) -> None:
        # Every handler gunicorn installs (error log, access log if asked) formats JSON.
        service = service_of(self.cfg.proc_name)
        super()._set_handler(log, output, JsonFormatter(service), stream)
