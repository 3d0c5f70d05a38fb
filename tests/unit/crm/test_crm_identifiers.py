"""Identifier normalisation and junk rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.crm.domain.errors import InvalidIdentifier, JunkIdentifier
from services.crm.domain.identifiers import Identifier, IdentifierPolicy, name_key

POLICY = IdentifierPolicy()


@pytest.mark.parametrize(
    "raw",
    [
        "+86 138 0013 8000",
        "13800138000",
        "0086-138-0013-8000",
        "(+86)138 0013 8000",
        "+86-138-0013-8000",
        " 138.0013.8000 ",
        "008613800138000",
        "１３８００１３８０００",  # full-width, as a Chinese input method types it
        "（＋86）138 0013 8000",
    ],
)
def test_every_spelling_of_one_chinese_mobile_is_one_e164_number(raw: str) -> None:
    assert POLICY.normalise("phone", raw) == Identifier("phone", "+8613800138000")


@pytest.mark.parametrize(
    ("region", "raw", "expected"),
    [
        ("CN", "+1 (415) 555-2671", "+14155552671"),
        ("US", "(415) 555-2671", "+14155552671"),
        ("GB", "020 7946 0958", "+442079460958"),
        ("CN", "00 44 20 7946 0958", "+442079460958"),
    ],
)
def test_the_default_region_applies_only_to_numbers_without_a_country_code(
    region: str, raw: str, expected: str
) -> None:
    assert IdentifierPolicy(default_region=region).normalise("phone", raw).value == expected


@pytest.mark.parametrize("raw", ["call me", "12", "+86 abc", "138001380001380013800"])
def test_a_phone_that_is_no_number_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        POLICY.normalise("phone", raw)


def test_email_is_trimmed_and_lower_cased() -> None:
    assert POLICY.normalise("email", "  Li.Wei@Example.COM ") == Identifier(
        "email", "li.wei@example.com"
    )


def test_an_email_without_a_domain_is_invalid() -> None:
    with pytest.raises(InvalidIdentifier):
        POLICY.normalise("email", "li.wei@")


def test_other_types_are_only_trimmed() -> None:
    assert POLICY.normalise("wechat_openid", " oAbC123 ").value == "oAbC123"


def test_an_unknown_type_is_invalid_unless_configured() -> None:
    with pytest.raises(InvalidIdentifier):
        POLICY.normalise("loyalty_card", "LC-1")
    policy = IdentifierPolicy(extra_types=("loyalty_card",))
    assert policy.normalise("loyalty_card", "LC-1").value == "LC-1"


@pytest.mark.parametrize(
    "raw", ["null", "NULL", "anonymous", "-1", "0000000", "0", "---", "  ", "undefined", "000-000"]
)
@pytest.mark.parametrize("type_", ["phone", "email", "wechat_openid", "account_number"])
def test_junk_values_are_refused_for_every_type(type_: str, raw: str) -> None:
    with pytest.raises(JunkIdentifier):
        POLICY.normalise(type_, raw)


@pytest.mark.parametrize(
    "raw", ["+86 000 0000 0000", "+1 000 000 0000", "0086 0000 0000", "(+86)000-0000-0000"]
)
def test_zeros_behind_a_country_code_are_a_placeholder_phone(raw: str) -> None:
    with pytest.raises(JunkIdentifier):
        POLICY.normalise("phone", raw)


def test_a_name_key_is_folded_and_fits_its_column_and_prefixes_still_match() -> None:
    assert name_key("Zhang WEI") == "zhang wei" and name_key("") is None
    assert name_key("ß" * 150) == "ss" * 100  # cut to the column, as a search term is
    assert name_key("ß" * 20) == "ss" * 20


def test_the_junk_list_is_configurable() -> None:
    policy = IdentifierPolicy(extra_junk=("guest",))
    with pytest.raises(JunkIdentifier):
        policy.normalise("app_user_id", "Guest")
    assert POLICY.normalise("app_user_id", "Guest").value == "Guest"


def test_normalise_all_drops_duplicate_spellings() -> None:
    found = POLICY.normalise_all(
        [("phone", "13800138000"), ("phone", "+86 138 0013 8000"), ("email", "A@B.CN")]
    )
    assert found == [Identifier("phone", "+8613800138000"), Identifier("email", "a@b.cn")]


def test_a_search_term_is_tried_as_every_type_it_can_be() -> None:
    types = {i.type for i in POLICY.candidates("13800138000")}
    assert "phone" in types and "email" not in types


@given(
    digits=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    prefix=st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "(+86)", "(+86) "]),
    sep=st.sampled_from(["", " ", "-", "."]),
)
def test_any_spelling_of_a_chinese_mobile_normalises_to_one_value(
    digits: str, prefix: str, sep: str
) -> None:
    spelled = prefix + sep.join([digits[:3], digits[3:7], digits[7:]])
    assert POLICY.normalise("phone", spelled).value == "+86" + digits
