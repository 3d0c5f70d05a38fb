"""A third-party document verifier plugged in through ``switchboard.identity.documents``.

Integration rather than unit: the verifier is exercised through a real verification,
which lives in Redis.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from services.identity.adapters.delivery import sign_body
from services.identity.app import create_app
from services.identity.bootstrap import build_documents
from shared.config import ConfigError, Settings
from tests.integration.identity.conftest import Api

MODULE = "sb_acme_documents"
PLUGIN = '''
class AcmeVerifier:
    """Records what it is asked to check; results come later on the signed callback."""

    name = "acme"

    def __init__(self, settings):
        self.settings = settings
        self.submitted = []

    def submit(self, verification_id, document):
        self.submitted.append((verification_id, dict(document)))
        return f"acme-{len(self.submitted)}"
'''
POLICY = {"min_factors": 1, "allowed_factors": ["document", "totp"], "require_possession": False}


@pytest.fixture
def acme_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed distribution declaring the entry point, as pip would leave it."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "sb_acme_documents-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-acme-documents\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[switchboard.identity.documents]\nacme = {MODULE}:AcmeVerifier\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop(MODULE, None)


@pytest.fixture
def acme_app(acme_installed: None, make_settings: Callable[..., Settings]) -> Flask:
    return create_app(
        make_settings("identity", IDENTITY_DOCUMENT_VERIFIER="acme", IDENTITY_KBA_ITERATIONS="1000")
    )


def callback(api: Api, settings: Settings, reference: str, result: str) -> int:
    raw = json.dumps({"reference": reference, "result": result}).encode()
    ts = str(int(time.time()))
    secret = settings.secret("IDENTITY_DOCUMENT_SECRET").encode()
    signed = {
        "Content-Type": "application/json",
        "X-Switchboard-Timestamp": ts,
        "X-Switchboard-Signature": sign_body(secret, ts, raw),
    }
    return api.c.post("/v1/documents/callback", data=raw, headers=signed).status_code


def test_the_named_entry_point_is_the_document_verifier(
    acme_installed: None, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings("identity", IDENTITY_DOCUMENT_VERIFIER="acme")
    verifier = build_documents(settings)
    assert type(verifier).__name__ == "AcmeVerifier" and verifier.name == "acme"
    assert verifier.settings is settings  # the factory is handed the service's settings
    with pytest.raises(ConfigError, match="unknown document verifier"):
        build_documents(make_settings("identity", IDENTITY_DOCUMENT_VERIFIER="nobody"))


def test_a_plugged_verifier_checks_the_document_of_a_verification(
    acme_app: Flask, headers: Callable[[str], dict[str, str]]
) -> None:
    api = Api(acme_app.test_client(), headers)
    settings = acme_app.extensions["sb"].settings
    verifier: Any = acme_app.extensions["sb"].extras["identity"].documents
    assert api.tier("docs", POLICY).status_code == 201
    vid = api.start("c-1", "web", tier="docs").json["verification_id"]
    passport = {"type": "passport", "number": "X1234560", "images": []}
    sent = api.challenge(vid, "document", document=passport)
    assert sent.status_code == 200, sent.json
    assert sent.json["reference"] == "acme-1" and sent.json["status"] == "submitted"
    assert verifier.submitted == [(vid, passport)]
    # Until the verifier answers there is nothing to judge (409, no attempt spent); the
    # sandbox would reject a number ending in 0: the plugin's own verdict is what counts.
    assert api.check(vid, "document").status_code == 409
    assert callback(api, settings, "acme-1", "approved") == 204
    done = api.check(vid, "document").json
    assert done["status"] == "approved" and done["satisfied_factors"] == ["document"]


def test_a_rejection_from_the_plugged_verifier_does_not_satisfy_the_factor(
    acme_app: Flask, headers: Callable[[str], dict[str, str]]
) -> None:
    api = Api(acme_app.test_client(), headers)
    settings = acme_app.extensions["sb"].settings
    api.tier("docs", POLICY)
    vid = api.start("c-1", "web", tier="docs").json["verification_id"]
    reference = api.challenge(vid, "document", document={"number": "P7"}).json["reference"]
    assert callback(api, settings, reference, "rejected") == 204
    r = api.check(vid, "document").json
    assert r["status"] == "pending" and r["satisfied_factors"] == []
    assert r["remaining_attempts"] == 4
    assert callback(api, settings, "acme-unknown", "approved") == 404


def test_a_failing_verifier_is_a_503_and_then_is_left_alone_for_a_while(
    acme_installed: None,
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
) -> None:
    app = create_app(
        make_settings(
            "identity",
            IDENTITY_DOCUMENT_VERIFIER="acme",
            IDENTITY_DELIVERY_BREAKER_FAILURES="2",
            IDENTITY_DELIVERY_BREAKER_SECONDS="60",
        )
    )
    api = Api(app.test_client(), headers)
    guarded: Any = app.extensions["sb"].extras["identity"].documents
    calls = []

    def down(verification_id: str, document: Any) -> str:
        calls.append(verification_id)
        raise ConnectionError("the vendor is down")

    guarded.verifier.submit = down
    api.tier("docs", POLICY)
    answers = []
    for i in range(3):
        vid = api.start(f"c-{i}", "web", tier="docs").json["verification_id"]
        answers.append(api.challenge(vid, "document", document={"number": "P1"}))
    assert [r.status_code for r in answers] == [503, 503, 503]
    assert all(r.mimetype == "application/problem+json" for r in answers)
    assert "Retry-After" not in answers[0].headers
    assert 55 <= int(answers[2].headers["Retry-After"]) <= 60
    assert len(calls) == 2  # the third was refused without calling the vendor
