"""The smtp provider and the document sandbox's own callback, over real sockets."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from services.identity.adapters.delivery import DeliveryFailed, SmtpDelivery, sign_body
from services.identity.adapters.documents import SandboxDocumentVerifier


class SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message (RFC 5321 happy path)."""

    messages: list[str] = []

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ready")
        while line := self.rfile.readline().decode():
            verb = line[:4].upper()
            if verb == "DATA":
                self.reply("354 go on")
                body = []
                while (data := self.rfile.readline().decode()) not in (".\r\n", ""):
                    body.append(data)
                SmtpSink.messages.append("".join(body))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb == "EHLO":
                self.reply("250 sink")
            else:
                self.reply("250 ok")


@pytest.fixture
def smtp_port() -> Iterator[int]:
    SmtpSink.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpSink)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_smtp_delivers_the_message(smtp_port: int) -> None:
    provider = SmtpDelivery("127.0.0.1", smtp_port, "no-reply@switchboard.test")
    provider.send("email", "li@example.com", "Your verification code is 123456.", {})
    assert len(SmtpSink.messages) == 1
    assert "To: li@example.com" in SmtpSink.messages[0]
    assert "123456" in SmtpSink.messages[0]


def test_smtp_that_is_down_raises_delivery_failed() -> None:
    from shared.testing import free_port

    with pytest.raises(DeliveryFailed):
        SmtpDelivery("127.0.0.1", free_port(), "x@y.z", timeout=1).send("email", "a@b.c", "m", {})


class Receiver(http.server.BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        Receiver.got.append(
            (dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("number", "result"), [("X1234561", "approved"), ("X1234560", "rejected"), ("X1234569", None)]
)
def test_the_sandbox_decides_from_the_number_and_posts_a_signed_callback(
    number: str, result: str | None
) -> None:
    Receiver.got = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cb"
        sandbox = SandboxDocumentVerifier(b"doc-secret", url, delay=0.01)
        reference = sandbox.submit("v-1", {"type": "passport", "number": number, "images": []})
        deadline = time.monotonic() + 30
        while result and not Receiver.got and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        if result is None:
            assert Receiver.got == []
            return
        headers, body = Receiver.got[0]
        assert headers["X-Switchboard-Signature"] == sign_body(
            b"doc-secret", headers["X-Switchboard-Timestamp"], body
        )
        assert f'"reference": "{reference}"' in body.decode() and result in body.decode()
    finally:
        server.shutdown()
        server.server_close()
