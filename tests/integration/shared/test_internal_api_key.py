"""Every service accepts the internal key it is configured with (`SB_INTERNAL_API_KEY`),
as the admin-scoped client `internal`, even when the operator's `API_KEYS` does not
list it; contradictory configurations stop the service with what to set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.identity.app import create_app as identity_app
from services.routing.app import create_app as routing_app
from shared.auth import INTERNAL_CLIENT, accepted_keys, authenticate
from shared.config import ConfigError, Settings
from shared.testing import auth
from tests.conftest import API_KEYS, API_KEYS_ENV

SEPARATE = "separate-internal-secret"


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"SB_ENV": "dev", "SB_VAR_DIR": str(tmp_path), "API_KEYS": API_KEYS_ENV, **env},
        service="identity",
    )


def test_an_internal_key_missing_from_api_keys_is_accepted_as_admin(tmp_path: Path) -> None:
    keys = accepted_keys(settings(tmp_path, SB_INTERNAL_API_KEY=SEPARATE))
    found = authenticate(keys, f"Bearer {SEPARATE}")
    assert (found.client, found.scopes, found.agent) == (INTERNAL_CLIENT, {"admin"}, None)
    assert authenticate(keys, f"Bearer {API_KEYS['agent']}").client == "agent1"  # as before


def test_the_dev_generated_internal_key_is_accepted(tmp_path: Path) -> None:
    """`make run` with operator keys and no SB_INTERNAL_API_KEY: every service reads
    the one generated under var/secrets, the CRM included."""
    s = settings(tmp_path)
    generated = s.secret("SB_INTERNAL_API_KEY")
    assert authenticate(accepted_keys(s), f"Bearer {generated}").client == INTERNAL_CLIENT


def test_an_internal_key_listed_with_the_admin_scope_is_not_added_twice(tmp_path: Path) -> None:
    s = settings(tmp_path, SB_INTERNAL_API_KEY=API_KEYS["admin"])
    assert accepted_keys(s) == s.api_keys


@pytest.mark.parametrize("scope", ["channel", "agent"])
def test_an_internal_key_listed_without_admin_stops_the_service(tmp_path: Path, scope: str) -> None:
    with pytest.raises(ConfigError, match="SB_INTERNAL_API_KEY.*admin") as caught:
        accepted_keys(settings(tmp_path, SB_INTERNAL_API_KEY=API_KEYS[scope]))
    assert API_KEYS[scope] not in str(caught.value)


def test_an_internal_key_bound_to_an_agent_stops_the_service(tmp_path: Path) -> None:
    s = settings(tmp_path, API_KEYS="desk7:d7:agent:a-7", SB_INTERNAL_API_KEY="d7")
    with pytest.raises(ConfigError, match="desk7"):
        accepted_keys(s)


def test_a_client_named_internal_with_another_secret_stops_the_service(tmp_path: Path) -> None:
    listed = "internal:pw-OTHER:admin"
    s = settings(tmp_path, API_KEYS=listed, SB_INTERNAL_API_KEY=SEPARATE)
    with pytest.raises(ConfigError, match="'internal'.*rename") as caught:
        accepted_keys(s)
    assert "pw-OTHER" not in str(caught.value) and SEPARATE not in str(caught.value)
    same = settings(tmp_path, API_KEYS=listed, SB_INTERNAL_API_KEY="pw-OTHER")
    assert accepted_keys(same) == same.api_keys


def test_without_an_internal_key_outside_dev_mode_the_service_does_not_start(
    redis_url: str,
) -> None:
    prod = {"REDIS_URL": redis_url, "API_KEYS": API_KEYS_ENV}
    with pytest.raises(ConfigError, match="SB_INTERNAL_API_KEY"):
        routing_app(Settings.from_env(prod, service="routing"))


@pytest.mark.parametrize(
    ("service", "make_app"), [("identity", identity_app), ("routing", routing_app)]
)
def test_identity_and_routing_answer_the_crms_export_calls_with_a_separate_key(
    make_settings: Callable[..., Settings], service: str, make_app: Callable[[Settings], Any]
) -> None:
    app = make_app(make_settings(service, SB_INTERNAL_API_KEY=SEPARATE))
    client = app.test_client()
    r = client.get("/v1/customers/c-1/export", headers=auth(SEPARATE))
    assert r.status_code == 200, r.json
    assert client.get("/v1/customers/c-1/export", headers=auth("nope")).status_code == 401
