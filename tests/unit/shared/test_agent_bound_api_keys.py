"""`API_KEYS` entries bound to an agent (API.md B): `client:secret:agent:<agent_id>`."""

from __future__ import annotations

import re

import pytest

from services.routing.api import _AGENT_ID as ROUTING_AGENT_ID
from shared.config import AGENT_ID_PATTERN, ConfigError, parse_api_keys


def test_a_fourth_part_binds_the_key_to_that_agent() -> None:
    keys = parse_api_keys(
        "desk7:s3cret:agent:a-7,chat7:x1:agent+channel:jane.doe@acme,sup:t0p:agent"
    )
    assert [(k.client, k.agent) for k in keys] == [
        ("desk7", "a-7"),
        ("chat7", "jane.doe@acme"),
        ("sup", None),  # without it: as before, any agent
    ]
    assert keys[1].scopes == {"agent", "channel"}
    assert "s3cret" not in repr(keys[0])


def test_bindings_take_the_agent_ids_routing_takes() -> None:
    assert ROUTING_AGENT_ID.pattern == AGENT_ID_PATTERN
    assert re.fullmatch(AGENT_ID_PATTERN, "a" * 64) and not re.fullmatch(AGENT_ID_PATTERN, "a" * 65)


@pytest.mark.parametrize("agent", ["", "a 7", "a/7", "a" * 65, "agent\u00e9", "a-7+a-8"])
def test_a_binding_to_an_invalid_agent_id_stops_the_service(agent: str) -> None:
    with pytest.raises(ConfigError, match="desk7.*invalid agent id") as caught:
        parse_api_keys(f"desk7:pw-SECRET:agent:{agent}")
    assert "pw-SECRET" not in str(caught.value)


@pytest.mark.parametrize("scopes", ["channel", "ivr", "", "channel+ivr"])
def test_a_binding_on_a_key_without_the_agent_scope_stops_the_service(scopes: str) -> None:
    """It would restrict nothing: an operator's mistake, not a wish."""
    with pytest.raises(ConfigError, match="desk7.*lacks the agent scope") as caught:
        parse_api_keys(f"desk7:pw-SECRET:{scopes}:a-7")
    assert "pw-SECRET" not in str(caught.value)


def test_a_binding_on_an_admin_key_stops_the_service() -> None:
    with pytest.raises(ConfigError, match="admin scope"):
        parse_api_keys("boss:pw:admin+agent:a-7")


@pytest.mark.parametrize("raw", ["a:b:agent:a-7:x", "a:b:agent:a-7:"])
def test_more_than_four_parts_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="must look like"):
        parse_api_keys(raw)
