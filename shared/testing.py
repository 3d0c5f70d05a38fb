"""Helpers for the tests and benchmarks: real servers, never fakes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from shared.embedded_redis import RedisClusterServers, RedisServer, free_port

__all__ = ["RedisClusterServers", "RedisServer", "free_port", "GunicornService", "auth", "ROOT"]

ROOT = Path(__file__).resolve().parent.parent


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class GunicornService:
    """One service under gunicorn on a free port, as in production."""

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        *,
        workers: int = 2,
        threads: int = 4,
        worker_class: str = "gthread",
        port: int | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.setdefault("PYTHONPATH", str(ROOT))
        bin_dir = Path(sys.executable).parent
        gunicorn = bin_dir / "gunicorn"
        args = [
            str(gunicorn) if gunicorn.exists() else "gunicorn",
            "--no-control-socket",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            app,
        ]
        self._log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
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
