"""Secrets and codes never reach the logs, even at DEBUG: a whole verification with every
kind of secret the service handles, then a search of everything logged for each of them."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.identity.app import create_app
from shared.config import Settings
from shared.logs import JsonFormatter
from tests.conftest import API_KEYS
from tests.integration.identity.conftest import CHROME, GOLD, Api

PHONE = "+8613800138000"
ANSWERS = {"first_pet": "Rexomir", "birth_city": "Ouagadougou"}


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Every record any logger emits, formatted as production formats it (extras too)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("identity"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_no_secret_or_code_is_logged(
    logged: io.StringIO,
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
) -> None:
    app = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000", LOG_LEVEL="DEBUG"))
    api = Api(app.test_client(), headers)
    secrets: list[str] = [*API_KEYS.values(), *ANSWERS.values()]

    api.tier("gold", GOLD)
    _fid, totp = api.enroll_totp("c-log-1")
    secrets.append(totp.secret)
    assert api.enroll("c-log-1", {"type": "sms_otp", "destination": PHONE}).status_code == 201
    assert api.enroll("c-log-1", {"type": "kba", "answers": ANSWERS}).status_code == 201

    vid = api.start("c-log-1", "chat", tier="gold", device=CHROME).json["verification_id"]
    assert api.challenge(vid, "sms_otp").status_code in (200, 201)
    code = api.last_code(PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    secrets += [code, wrong]
    assert api.check(vid, "sms_otp", code=wrong).json["status"] == "pending"
    assert api.check(vid, "sms_otp", code=code).json["satisfied_factors"] == ["sms_otp"]
    done = api.check(vid, "kba", answers={"first_pet": "rexomir", "birth_city": "OUAGADOUGOU"})
    token = done.json["session_token"]
    assert done.json["status"] == "approved" and token
    secrets.append(token)
    secrets.append(token.rsplit(".", 1)[1])  # the signature alone

    # The paths where a secret meets an error: a bad key, a forged token, a bad code.
    bad_key = "not-a-key-6f1d2c9e8b"
    secrets.append(bad_key)
    denied = api.c.get(
        "/v1/customers/c-log-1/factors", headers={"Authorization": f"Bearer {bad_key}"}
    )
    assert denied.status_code == 401
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    secrets.append(forged.rsplit(".", 1)[1])
    assert api.introspect(forged).json == {"active": False}
    bad_code = "12345678901234567890x"
    secrets.append(bad_code)
    assert api.check(vid, "totp", code=bad_code).status_code in (400, 409, 422)
    assert api.call("POST", "/v1/sessions/revoke", "ivr", json={"token": token}).status_code == 200

    text = logged.getvalue()
    assert "dev delivery" in text  # the handler saw the app's own records
    leaked = [s for s in secrets if s and s in text]
    assert leaked == []


def test_the_dev_outbox_is_the_only_place_a_dev_code_is_kept(
    api: Api, redis: Any, logged: io.StringIO
) -> None:
    """The documented dev-only way to read codes keeps them in Redis, not in the log."""
    api.tier("gold", GOLD)
    assert api.enroll("c-log-2", {"type": "sms_otp", "destination": PHONE}).status_code == 201
    vid = api.start("c-log-2", "chat", tier="gold").json["verification_id"]
    api.challenge(vid, "sms_otp")
    code = api.last_code(PHONE)
    assert "dev delivery" in logged.getvalue()
    assert code not in logged.getvalue()
