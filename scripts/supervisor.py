"""`make run`'s process supervision: start, watch and stop its children.

Stopping must hold whatever signal arrives whenever: a second SIGTERM while a
stop is under way (after a child died, say) once raised into the middle of the
stop and left the embedded redis-server running, orphaned, its port held, so the
next `make run` failed. So signal handlers never raise: they record the signal,
and the supervisor looks at the record between steps. The first stop signal
asks for a stop; one arriving during the stop asks to hurry (the children still
running are killed instead of waited for). Every child is reaped, its process
group swept (a killed gunicorn master leaves its workers), and the embedded
Redis stopped last, in a ``finally``, exactly once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from shared.embedded_redis import RedisServer

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_SECONDS = 20.0


def die_with_parent() -> None:
    """For a child's ``preexec_fn``: SIGTERM if the supervisor itself dies (even by
    SIGKILL, which no handler sees), so nothing outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not bind ``host:port`` now. SO_REUSEADDR as gunicorn and
    redis-server set it, so a port only in TIME_WAIT (a previous run's) counts free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_problems(ports: Mapping[str, int]) -> list[str]:
    """What stands in the way of binding ``ports`` (what binds it -> port): taken or
    wanted twice. Checked before anything starts, so a taken port fails in a second,
    by name, instead of as a service that never becomes ready."""
    problems = []
    owners: dict[int, str] = {}
    for what, port in ports.items():
        if port in owners:
            problems.append(f"port {port} is wanted by both {owners[port]} and {what}")
            continue
        owners[port] = what
        if port_in_use(port):
            problems.append(f"port {port} ({what}) is already in use on 127.0.0.1")
    return problems


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.redis: RedisServer | None = None
        self.signals: list[int] = []
        self._signals_at_stop = 0
        self.stopping = False
        self.stopped = False

    # -- signals ---------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Never raises: an exception here would land anywhere, a stop's middle included.
        self.signals.append(signum)

    @property
    def asked_to_stop(self) -> bool:
        return bool(self.signals)

    @property
    def hurry(self) -> bool:
        """A stop signal arrived after the stop began."""
        return len(self.signals) > self._signals_at_stop

    # -- children --------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(
            args,
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.children.append((name, proc))
        print(f"  started {name:<22} pid {proc.pid}  log {log_dir / name}.log")

    def exited(self) -> tuple[str, int] | None:
        """The first child found ended: its name and exit code."""
        for name, proc in self.children:
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def explain_exit(self, name: str, code: int) -> str:
        log = self.log_dir / f"{name}.log"
        return f"{name} exited with {code}; last lines of {log}:\n{tail(log)}"

    def wait_ready(self, name: str, url: str, timeout: float = 180.0) -> str | None:
        """None once ``url``/readyz answers 200; else why not. A child that exits ends the
        wait at once (a port taken after the check, a crash at boot): only a service that
        stays up without answering waits out the (generous: a busy machine starts slowly)
        ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.asked_to_stop:
                return "stopped while starting"
            dead = self.exited()
            if dead:
                return self.explain_exit(*dead)
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return None
            except OSError:
                pass
            time.sleep(0.2)
        return f"{name} did not become ready within {timeout:.0f} s; see {self.log_dir / name}.log"

    def watch(self) -> int:
        """Until a stop signal (0) or a child's end (1, said which)."""
        while not self.asked_to_stop:
            dead = self.exited()
            if dead:
                print(self.explain_exit(*dead))
                return 1
            time.sleep(0.2)
        return 0

    # -- stopping --------------------------------------------------------------

    def stop(self) -> None:
        """Every child stopped and reaped, then the embedded Redis; once, whatever
        arrives meanwhile."""
        if self.stopping:
            return
        self.stopping = True
        self._signals_at_stop = len(self.signals)
        print("\nstopping ...", flush=True)
        try:
            self._stop_children()
        finally:
            if self.redis is not None:
                self.redis.stop()  # SIGTERM: redis-server flushes its AOF and exits
                print("  embedded redis stopped")
            self.stopped = True
        print("stopped cleanly", flush=True)

    def _stop_children(self) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        while running := [(n, p) for n, p in self.children if p.poll() is None]:
            if self.hurry or time.monotonic() > deadline:
                why = "asked again to stop" if self.hurry else "did not stop in time"
                for name, proc in running:
                    print(f"  {name}: {why}; killing it")
                    _kill_group(proc.pid)
                for _, proc in running:
                    proc.wait()
                break
            time.sleep(0.1)
        for _, proc in self.children:
            proc.wait()
            # A killed gunicorn master leaves its workers behind, in its process group.
            _kill_group(proc.pid)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
