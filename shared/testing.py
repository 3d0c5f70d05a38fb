"""Helpers for the tests and benchmarks: real servers, never fakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from shared.embedded_redis import RedisClusterServers, RedisServer, free_port
from shared.serving import layout

__all__ = [
    "RedisClusterServers",
    "RedisServer",
    "free_port",
    "GunicornService",
    "Product",
    "auth",
    "ROOT",
]

ROOT = Path(__file__).resolve().parent.parent


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class GunicornService:
    """One service under gunicorn on a free port, as in production: the layout of
    ``shared.serving`` unless ``workers`` overrides its process count."""

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        *,
        workers: int | None = None,
        port: int | None = None,
        log_path: str | Path | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        # ``cwd``: another checkout of the code (bench/identity_cpu.py serves an older
        # revision beside this one, on the same interpreter and settings).
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.setdefault("PYTHONPATH", str(cwd or ROOT))
        bin_dir = Path(sys.executable).parent
        gunicorn = bin_dir / "gunicorn"
        args = [
            str(gunicorn) if gunicorn.exists() else "gunicorn",
            "--no-control-socket",
            "--bind",
            f"127.0.0.1:{self.port}",
            *layout(app.split(".")[1], workers).args(),
            "--graceful-timeout",
            "5",
            app,
        ]
        self._log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=cwd or ROOT,
            env=full_env,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120.0) -> None:
        # Generous: a loaded machine took 39 s to start one; a gunicorn that exits ends the
        # wait at once.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("gunicorn did not become healthy")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> GunicornService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Product:
    """The whole product as `make run` starts it, on a Redis and SQLite of its own."""

    def __init__(
        self,
        directory: Path,
        api_keys_env: str,
        internal_key: str,
        *,
        workers: int | None = 2,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.redis = RedisServer(directory / "redis", persistent=True)
        self.database_url = f"sqlite:///{directory / 'crm.db'}"
        self.ports = {s: free_port() for s in ("identity", "crm", "routing")}
        self.urls = {s: f"http://127.0.0.1:{p}" for s, p in self.ports.items()}
        env = dict(os.environ)
        env.update({f"{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        env.update(
            {
                "SB_ENV": "dev",
                "SB_VAR_DIR": str(directory / "var"),
                "REDIS_URL": self.redis.url,
                "DATABASE_URL": self.database_url,
                "API_KEYS": api_keys_env,
                "SB_INTERNAL_API_KEY": internal_key,
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING",
            }
        )
        # None: the layout `make run` and production use (shared/serving.py).
        if workers is not None:
            env["SB_WORKERS"] = str(workers)
        else:
            env.pop("SB_WORKERS", None)
        env.update(extra_env or {})
        self.log_path = directory / "run.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while "Switchboard is running" not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the product did not start:\n" + self.log_path.read_text())
            time.sleep(0.2)

    def log_tails(self, lines: int = 30) -> str:
        """The end of run.py's output and of every process's log under var/log: why a
        service died or refused connections, for a failed test or benchmark."""
        parts = []
        for path in [self.log_path, *sorted((self.log_path.parent / "var" / "log").glob("*.log"))]:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self.redis.stop()
