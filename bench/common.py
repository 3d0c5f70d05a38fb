"""What every benchmark needs: real servers, an HTTP load generator, a table.

``http_load`` drives one URL at a fixed concurrency for a fixed time and
returns requests/s and latency percentiles. It uses ``wrk`` (C, keeps the
load generator's CPU cost low on a 2-core machine; installed from the
distribution when missing and we are root) and falls back to a threaded
Python client, which is slower but measures the baseline the same way.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.testing import GunicornService, RedisServer  # noqa: E402

__all__ = [
    "GunicornService",
    "RedisServer",
    "LoadResult",
    "http_load",
    "print_table",
    "percentile",
    "machine",
    "bench_env",
    "wsgi_call",
    "wsgi_cpu_us",
    "server_cpu_seconds",
    "ROOT",
]

BENCH_KEYS = {
    "admin": "bench-admin-secret",
    "channel": "bench-channel-secret",
    "ivr": "bench-ivr-secret",
    "agent": "bench-agent-secret",
}


def bench_env(redis_url: str, var_dir: str, **extra: str) -> dict[str, str]:
    """A dev-mode environment for a service under benchmark."""
    return {
        "SB_ENV": "dev",
        "REDIS_URL": redis_url,
        "SB_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        "API_KEYS": ",".join(f"b-{s}:{k}:{s}" for s, k in BENCH_KEYS.items()),
        **extra,
    }


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _wrk() -> str | None:
    found = shutil.which("wrk")
    if found or os.environ.get("SB_BENCH_NO_WRK"):
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return shutil.which("wrk")


_WRK_SCRIPT = """
wrk.method = %(method)s
wrk.body = %(body)s
%(headers)s
%(request)s
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format('{"requests": %%d, "errors": %%d, "us": %%d, "p50": %%f, "p99": %%f}\\n',
    summary.requests, errors, summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def http_load(
    url: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    concurrency: int = 32,
    duration: float = 10.0,
    threads: int = 2,
    wrk_request: str | None = None,
) -> LoadResult:
    """Offer ``concurrency`` connections to ``url`` for ``duration`` seconds.

    ``wrk_request`` is Lua run by wrk before each request (e.g. a random body:
    ``request = function() ... return wrk.format(...) end``); the Python fallback
    sends ``body`` every time instead.
    """
    payload = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
    all_headers = dict(headers or {})
    if payload:
        all_headers.setdefault("Content-Type", "application/json")
    wrk = _wrk()
    if wrk:
        script = _WRK_SCRIPT % {
            "method": _lua(method),
            "body": _lua(payload) if payload else "nil",
            "headers": "\n".join(
                f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in all_headers.items()
            ),
            "request": wrk_request or "",
        }
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(script)
        try:
            out = subprocess.run(
                [
                    wrk,
                    f"-t{threads}",
                    f"-c{concurrency}",
                    f"-d{max(1, int(duration))}s",
                    "-s",
                    fh.name,
                    url,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            os.unlink(fh.name)
        line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
        data = json.loads(line)
        return LoadResult(
            data["requests"],
            data["errors"],
            data["us"] / 1e6,
            data["p50"] / 1000,
            data["p99"] / 1000,
        )
    return _python_load(url, method, payload, all_headers, concurrency, duration)


def _python_load(
    url: str,
    method: str,
    payload: str,
    headers: Mapping[str, str],
    concurrency: int,
    duration: float,
) -> LoadResult:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        local: list[float] = []
        failures = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                conn.request(method, path, body=payload or None, headers=dict(headers))
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    failures += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                failures += 1
                conn.close()
            local.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local)
            errors[0] += failures

    began = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    return LoadResult(
        len(latencies),
        errors[0],
        elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
    )


def wsgi_call(
    app: Any,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> tuple[str, bytes]:
    """One request through the whole WSGI stack, no sockets: (status line, body)."""
    return _run_wsgi(app, _environ(method, path, headers, body), body)


def _environ(
    method: str, path: str, headers: Mapping[str, str] | None, body: bytes
) -> dict[str, Any]:
    """The WSGI environ of a request, all but its input stream."""
    parts = urlsplit(path)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    return environ


def _run_wsgi(app: Any, environ: Mapping[str, Any], body: bytes) -> tuple[str, bytes]:
    """``environ`` (copied, with ``body`` as its input) through ``app``."""
    import io

    statuses: list[str] = []

    def start_response(status: str, *_: Any) -> None:
        statuses.append(status)

    chunks = app({**environ, "wsgi.input": io.BytesIO(body)}, start_response)
    out = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return statuses[-1], out


def wsgi_cpu_us(
    app: Any,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    n: int = 2000,
    rounds: int = 5,
) -> float:
    """CPU time (this thread's, microseconds) of one request through the whole WSGI
    stack, no sockets: the least of ``rounds`` runs of ``n``. Time the machine gives
    to others is not counted, so on a shared machine this is far steadier than req/s."""
    # Built once: the loop times the app, not the harness (each call copies it).
    environ = _environ(method, path, headers, body)
    for _ in range(200):
        status, _ = _run_wsgi(app, environ, body)
    if not status.startswith("2"):
        raise AssertionError(f"{method} {path} answered {status}")
    best = float("inf")
    for _ in range(rounds):
        began = time.thread_time()
        for _ in range(n):
            _run_wsgi(app, environ, body)
        best = min(best, (time.thread_time() - began) / n * 1e6)
    return best


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table, ready for docs/performance.md."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text + "\n", flush=True)
    return text


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"interpreter speed {interpreter_speed():.1f} M loop steps per CPU-second"
    )


def interpreter_speed() -> float:
    """Millions of steps of a plain Python loop per second of this thread's CPU time, best
    of five: how fast this (shared, throttled) VM runs Python right now. Absolute figures
    from different runs compare only through it; ratios within a run do not need it."""
    best = float("inf")
    for _ in range(5):
        began, total = time.thread_time(), 0
        for i in range(300_000):
            total += i & 7
        best = min(best, time.thread_time() - began)
    return 0.3 / best if best > 0 else float("nan")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def server_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of a process and its children, e.g. a gunicorn master and its
    workers (from /proc): a cost per request that other load on a shared machine does
    not distort the way req/s is."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [master_pid]
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as fh:
            pids += [int(p) for p in fh.read().split()]
    except OSError:
        return float("nan")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return total / tick
