"""`make run`'s supervisor: everything up with embedded defaults, state kept, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis as redis_lib

from shared.testing import ROOT, free_port


def start(
    var: Path, ports: dict[str, int], redis_port: int
) -> tuple[subprocess.Popen[str], list[str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "API_KEYS", "SB_ENV"}
    }
    env.update({f"{s.upper()}_PORT": str(p) for s, p in ports.items()})
    env.update({"SB_VAR_DIR": str(var), "SB_WORKERS": "1", "PYTHONUNBUFFERED": "1"})
    env["SB_REDIS_PORT"] = str(redis_port)
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "DEV API keys" in line:
            for _ in range(5):
                lines.append(proc.stdout.readline())
            return proc, lines
    proc.kill()
    raise AssertionError("make run did not come up:\n" + "".join(lines))


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


@contextmanager
def explained(var: Path, output: list[str]) -> Iterator[None]:
    """A failure carries the supervisor's output and the end of every process's log:
    a rare failure must say which process stopped, or it cannot be diagnosed."""
    try:
        yield
    except Exception as exc:
        tails = [
            f"== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            for log in sorted((var / "log").glob("*.log"))
        ]
        raise AssertionError(
            "".join(output) + "\n" + "\n".join(tails) + f"\n{type(exc).__name__}: {exc}"
        ) from exc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_run_brings_everything_up_keeps_state_and_stops_cleanly(tmp_path: Path) -> None:
    # Every port from this process: run.py choosing its Redis port on its own could pick
    # one of the services' (chosen here but not bound yet).
    ports = {"identity": free_port(), "crm": free_port(), "routing": free_port()}
    redis_port = free_port()
    var = tmp_path / "var"
    output: list[str] = []
    with explained(var, output):
        proc, lines = start(var, ports, redis_port)
        output += lines
        text = "".join(lines)
        try:
            for port in ports.values():
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200
            redis_url = re.search(r"at (redis://\S+)", text).group(1)  # type: ignore[union-attr]
            redis_lib.Redis.from_url(redis_url).set("survives-restart", "yes")
            assert re.search(r"admin\s+dev-admin-\S+\s+scope admin", text)
        finally:
            output.append(stop(proc))
        pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
        assert len(pids) >= 7  # redis + 3 services + 3 consumers
        assert proc.returncode == 0 and "stopped cleanly" in output[-1]
        assert not [pid for pid in pids if alive(pid)]

        again, lines = start(var, ports, redis_port)
        output += lines
        try:
            redis_url = re.search(r"at (redis://\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
            assert redis_lib.Redis.from_url(redis_url).get("survives-restart") == b"yes"
            # The dev keys are kept too, so a restart does not invalidate a client's config.
            assert re.findall(r"dev-admin-\S+", "".join(lines)) == re.findall(
                r"dev-admin-\S+", text
            )
        finally:
            output.append(stop(again))


def test_make_run_refuses_production_mode_on_its_embedded_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update({"SB_ENV": "production", "SB_VAR_DIR": str(tmp_path / "var")})
    run = subprocess.run(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "development only" in run.stdout
    assert "dev-admin" not in run.stdout  # no keys made, none printed
    assert not (tmp_path / "var" / "redis").exists()
