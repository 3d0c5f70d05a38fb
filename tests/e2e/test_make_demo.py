"""`make demo` without `make run`: it says what to start, not a bare "Connection refused"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.testing import ROOT, free_port


def test_the_demo_without_the_services_says_to_start_make_run_and_which_url_it_tried(
    tmp_path: Path,
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    # Keys of an earlier `make run`: the demo gets as far as calling the services.
    (var / "dev-api-keys").write_text("admin=a\nchannel=c\nivr=i\nagent=g\ninternal=n\n")
    port = free_port()  # nothing listens there
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"IDENTITY_URL", "CRM_URL", "ROUTING_URL"} and not k.startswith("DEMO_")
    }
    env.update(
        SB_VAR_DIR=str(var),
        IDENTITY_PORT=str(port),
        CRM_PORT=str(free_port()),
        ROUTING_PORT=str(free_port()),
    )
    demo = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert "start it first" in demo.stdout.lower() and "`make run`" in demo.stdout, demo.stdout
    assert f"http://127.0.0.1:{port}/readyz" in demo.stdout, demo.stdout
    assert "Traceback" not in demo.stderr
