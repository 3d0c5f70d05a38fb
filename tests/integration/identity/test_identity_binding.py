"""Binding never weakens (API.md B): a device-bound token is reused only with its device,
and every token minted from it carries the same ``cnf``."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.integration.identity.conftest import CHROME, Api
from tests.integration.identity.test_identity_verification_api import approved_token, enrolled

OTHER = {**CHROME, "platform": "MacIntel", "screen": "2560x1600"}


def cnf(token: str) -> Any:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("cnf")


def test_a_bound_token_presented_without_a_device_is_not_laundered(api: Api) -> None:
    token = approved_token(api)["session_token"]  # issued on device A (CHROME)
    assert cnf(token)
    # The attack of issue 16: start with the token and no device, then use what comes back
    # from device B.
    laundering = api.start("c-1", "web", tier="gold", session_token=token)
    assert laundering.status_code == 201, laundering.json
    assert laundering.json["status"] == "pending" and laundering.json["satisfied_factors"] == []
    assert "session_token" not in laundering.json
    from_b = api.start("c-1", "web", tier="gold", device=OTHER, session_token=token)
    assert from_b.status_code == 201 and from_b.json["status"] == "pending"


def test_a_bound_token_reused_with_its_device_mints_a_token_with_the_same_binding(
    api: Api,
) -> None:
    token = approved_token(api)["session_token"]
    again = api.start("c-1", "web", tier="gold", device=CHROME, session_token=token)
    assert again.status_code == 200 and again.json["reused"] is True
    minted = again.json["session_token"]
    assert cnf(minted) == cnf(token)
    # and so on down the chain: the minted one is not reusable without the device either
    assert api.start("c-1", "web", tier="gold", session_token=minted).status_code == 201
    chained = api.start("c-1", "web", tier="gold", device=CHROME, session_token=minted)
    assert chained.status_code == 200 and cnf(chained.json["session_token"]) == cnf(token)


def test_an_unbound_token_is_reused_with_or_without_a_device_as_before(api: Api) -> None:
    totp = enrolled(api)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]  # no device
    api.check(vid, "kba", answers={"first_pet": "rex", "birth_city": "oslo"})
    token = api.check(vid, "totp", code=totp.now()).json["session_token"]
    assert cnf(token) is None
    plain = api.start("c-1", "web", tier="gold", session_token=token)
    assert plain.status_code == 200 and plain.json["reused"] is True
    assert cnf(plain.json["session_token"]) is None
    # A device that comes later binds the token it is given (binding only ever strengthens).
    bound = api.start("c-1", "web", tier="gold", device=CHROME, session_token=token)
    assert bound.status_code == 200 and cnf(bound.json["session_token"])


def test_introspection_of_a_bound_token_without_a_device_answers_with_its_binding(
    api: Api,
) -> None:
    token = approved_token(api)["session_token"]
    alone = api.introspect(token).json
    assert alone["active"] is True and alone["cnf"] == cnf(token)
    assert api.introspect(token, device=CHROME).json["cnf"] == cnf(token)
    assert api.introspect(token, device=OTHER).json == {"active": False}
    assert api.introspect(token, device={"ani": "+8613800138000"}).json == {"active": False}
