"""Request validation details the schemas share."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from services.crm.schemas import ResolveSchema


def resolve_with(value: str) -> Any:
    return ResolveSchema().load({"identifiers": [{"type": "phone", "value": value}]})


@pytest.mark.parametrize("code", [c for c in range(32) if chr(c) not in "\t\n\r"])
def test_c0_control_characters_are_refused(code: int) -> None:
    with pytest.raises(ValidationError) as refused:
        resolve_with(f"138{chr(code)}0013")
    assert refused.value.messages == {
        "identifiers": {0: {"value": ["must not contain control characters"]}}
    }


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\x7f", "\x85", "\u2028", "é"])
def test_tab_newline_return_and_characters_above_c0_are_accepted(char: str) -> None:
    assert resolve_with(f"138{char}0013")["identifiers"][0]["value"] == f"138{char}0013"
