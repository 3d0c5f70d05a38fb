"""`make run`'s supervisor when things go wrong: a signal during its stop, a taken port,
a child that dies while starting. Each case ends with nothing left running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.supervisor import port_in_use
from shared.testing import ROOT, free_port
from tests.e2e.test_make_run import alive, explained, start


def until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def run_env(var: Path, ports: dict[str, int], redis_port: int, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "DATABASE_URL", "API_KEYS", "SB_ENV"}
    }
    env.update({f"{s.upper()}_PORT": str(p) for s, p in ports.items()})
    env.update({"SB_VAR_DIR": str(var), "SB_WORKERS": "1", "PYTHONUNBUFFERED": "1"})
    env.update({"SB_REDIS_PORT": str(redis_port), **extra})
    return env


def some_ports() -> tuple[dict[str, int], int]:
    return {"identity": free_port(), "crm": free_port(), "routing": free_port()}, free_port()


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_port()))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_stop_signal_during_the_stop_still_stops_every_child_and_redis_last(
    tmp_path: Path,
) -> None:
    ports, redis_port = some_ports()
    var = tmp_path / "var"
    output: list[str] = []
    pids: dict[str, int] = {}
    with explained(var, output):
        proc, lines = start(var, ports, redis_port)
        output += lines
        text = "".join(lines)
        pids = {name: int(pid) for name, pid in re.findall(r"started (\S+)\s+pid (\d+)", text)}
        pids["redis"] = int(re.search(r"at redis://\S+\s+pid (\d+)", text).group(1))  # type: ignore[union-attr]
        try:
            # A child that cannot stop on its own holds the stop open; another's death
            # starts it; the second SIGTERM lands in its middle.
            os.kill(pids["crm-consumer"], signal.SIGSTOP)
            os.kill(pids["identity-consumer"], signal.SIGKILL)
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line)
                if "stopping ..." in line:
                    break
            assert "identity-consumer exited with -9" in "".join(output)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=120)
            output.append(out)

            assert until(lambda: not alive(pids["redis"])), "the embedded redis-server was left"
            assert not port_in_use(redis_port)
            assert until(lambda: not [n for n, pid in pids.items() if alive(pid)])
            assert "embedded redis stopped" in out and "stopped cleanly" in out
            assert "crm-consumer: asked again to stop; killing it" in out
            # Nothing holds a port: the next `make run` on them starts.
            assert not [p for p in [*ports.values(), redis_port] if port_in_use(p)]
        finally:
            for pid in pids.values():  # whatever a failure left
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("what", ["crm", "redis"])
def test_a_taken_port_fails_before_anything_starts_and_names_it(
    tmp_path: Path, listening: int, what: str
) -> None:
    ports, redis_port = some_ports()
    if what == "redis":
        redis_port = listening
    else:
        ports[what] = listening
    var = tmp_path / "var"
    run = subprocess.run(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=run_env(var, ports, redis_port),
        capture_output=True,
        text=True,
        timeout=120,
    )
    variable = "SB_REDIS_PORT" if what == "redis" else f"{what.upper()}_PORT"
    assert run.returncode == 2, run.stdout + run.stderr
    assert re.search(rf"port {listening} \([^)]*{variable}\) is already in use", run.stdout)
    assert "started" not in run.stdout, run.stdout  # nothing was started, nothing to stop
    assert not (var / "redis").exists()


def test_a_child_dying_while_starting_fails_the_run_at_once_saying_why(tmp_path: Path) -> None:
    ports, redis_port = some_ports()
    var = tmp_path / "var"
    run = subprocess.run(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=run_env(var, ports, redis_port, IDENTITY_OTP_LIFETIME="soon"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    # Said when it happened, with the child's own words, not after a readiness timeout.
    assert re.search(r"identity\S* exited with", run.stdout), run.stdout
    assert "IDENTITY_OTP_LIFETIME must be an integer" in run.stdout, run.stdout
    assert "did not become ready" not in run.stdout
    pids = [int(p) for p in re.findall(r"pid (\d+)", run.stdout)]
    assert pids and until(lambda: not [pid for pid in pids if alive(pid)])
    assert not port_in_use(redis_port)
