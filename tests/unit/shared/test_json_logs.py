"""A process that configured logging writes nothing but JSON lines: its warnings and the
traceback it dies of included (a log pipeline reads one format)."""

from __future__ import annotations

import json
import subprocess
import sys

from shared.gunicorn_logging import service_of
from shared.testing import ROOT

PROGRAM = """
import warnings
from shared.logs import configure_logging
configure_logging("crm")
warnings.warn("an old call")
raise ValueError("boom")
"""


def test_warnings_and_a_crash_are_json_lines() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert [(e["logger"], e["level"]) for e in lines] == [
        ("py.warnings", "warning"),
        ("sb.crash", "critical"),
    ]
    assert all(e["service"] == "crm" for e in lines)
    assert "ValueError: boom" in lines[1]["exc"]


def test_gunicorn_lines_name_the_service_they_serve() -> None:
    assert service_of("services.identity.app:create_app()") == "identity"
    assert service_of("other:app") == "other:app"
    assert service_of(None) == "gunicorn"
