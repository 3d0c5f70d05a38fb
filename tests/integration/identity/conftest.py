"""Fixtures of the identity integration tests: the real app on the test Redis."""

from __future__ import annotations

import base64
import http.server
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.identity.app import create_app
from services.identity.bootstrap import Wiring
from shared.config import Settings

CHROME = {
    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
    "platform": "Win32",
    "screen": "1920x1080",
    "timezone": "Europe/Berlin",
    "ip": "203.0.113.17",
}
GOLD = {
    "min_factors": 2,
    "require_possession": True,
    "max_attempts": 5,
    "lockout_seconds": 900,
    "channels": {"voice": {"allowed_factors": ["voice_otp", "kba", "trusted_device"]}},
}


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    return create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def service(app: Flask) -> Wiring:
    return app.extensions["sb"].extras["identity"]


class Api:
    """A channel adapter / IVR / admin talking to the app, in sentences."""

    def __init__(self, client: FlaskClient, headers: Callable[[str], dict[str, str]]) -> None:
        self.c, self.h = client, headers

    def call(self, method: str, path: str, scope: str = "channel", **kw: Any) -> Any:
        return self.c.open(path, method=method, headers=self.h(scope), **kw)

    def tier(self, name: str, policy: dict[str, Any]) -> Any:
        return self.call("PUT", f"/v1/admin/tiers/{name}", "admin", json=policy)

    def enroll_totp(self, cid: str) -> tuple[str, pyotp.TOTP]:
        r = self.call("POST", f"/v1/customers/{cid}/factors", json={"type": "totp"})
        assert r.status_code == 201, r.json
        totp = pyotp.TOTP(r.json["secret"])
        # Confirm with the previous step's code so the current one stays usable in the test.
        previous = totp.at(time.time() - 30)
        ok = self.call(
            "POST",
            f"/v1/customers/{cid}/factors/{r.json['factor_id']}/confirm",
            json={"code": previous},
        )
        assert ok.status_code == 200, ok.json
        return r.json["factor_id"], totp

    def enroll(self, cid: str, body: dict[str, Any]) -> Any:
        return self.call("POST", f"/v1/customers/{cid}/factors", json=body)

    def start(self, cid: str, channel: str = "chat", **body: Any) -> Any:
        return self.call(
            "POST", "/v1/verifications", json={"customer_id": cid, "channel": channel, **body}
        )

    def challenge(self, vid: str, factor: str, **body: Any) -> Any:
        return self.call(
            "POST", f"/v1/verifications/{vid}/challenges", json={"factor": factor, **body}
        )

    def check(self, vid: str, factor: str, **body: Any) -> Any:
        return self.call("POST", f"/v1/verifications/{vid}/checks", json={"factor": factor, **body})

    def last_code(self, to: str) -> str:
        items = self.messages(to)
        # The first six digits, in whatever language (zh by default), spelt out or not (a
        # voice reads them one by one).
        return "".join(re.findall(r"\d", items[0]["message"]))[:6]

    def messages(self, to: str) -> list[dict[str, Any]]:
        return self.call("GET", "/v1/dev/messages", "admin", query_string={"to": to}).json["items"]

    def introspect(self, token: str, **body: Any) -> Any:
        return self.call("POST", "/v1/sessions/introspect", "ivr", json={"token": token, **body})


@pytest.fixture
def api(client: FlaskClient, headers: Callable[[str], dict[str, str]]) -> Api:
    return Api(client, headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Gateway(http.server.BaseHTTPRequestHandler):
    """A stand-in SMS gateway: answers 503 to the first ``failures`` posts, then ``status``;
    counts every post in ``posts`` and keeps the accepted ones (2xx) in ``received``."""

    failures = 0
    status = 202
    posts = 0
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Gateway.posts += 1
        if Gateway.failures > 0:
            Gateway.failures -= 1
            self.send_response(503)
        else:
            if Gateway.status < 300:
                Gateway.received.append((dict(self.headers), body))
            self.send_response(Gateway.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    """The URL of a fresh ``Gateway`` that accepts every post until a test says otherwise."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    Gateway.failures, Gateway.status, Gateway.posts, Gateway.received = 0, 202, 0, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook_app(gateway: str, make_settings: Callable[..., Settings]) -> Callable[..., Flask]:
    """Makes an identity app that sends codes to the stand-in gateway, without retries;
    ``env`` adds settings."""

    def make(**env: str) -> Flask:
        return create_app(
            make_settings(
                "identity",
                IDENTITY_DELIVERY="webhook",
                IDENTITY_WEBHOOK_URL=gateway,
                IDENTITY_WEBHOOK_RETRIES="0",
                **env,
            )
        )

    return make
