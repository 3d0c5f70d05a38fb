"""Case numbers: random, readable aloud, and a check symbol that catches a misheard one."""

from __future__ import annotations

import re

import pytest

from services.crm.domain.case_numbers import (
    ALPHABET,
    InvalidCaseNumber,
    is_valid,
    new_case_number,
    parse_case_number,
)

SHAPE = re.compile(r"C-[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{3}")


def test_new_numbers_have_the_shape_a_valid_check_and_do_not_follow_one_another() -> None:
    numbers = [new_case_number() for _ in range(2000)]
    assert all(SHAPE.fullmatch(n) and parse_case_number(n) == n for n in numbers)
    assert len(set(numbers)) == len(numbers)
    # No symbol of the random part is fixed (a year, a counter's leading zeros).
    for position in range(8):
        assert len({n.replace("-", "")[1 + position] for n in numbers}) > 20


def test_every_single_wrong_symbol_is_caught() -> None:
    number = new_case_number()
    symbols = number[2:].replace("-", "")
    for position in range(len(symbols)):
        for symbol in ALPHABET:
            if symbol != symbols[position]:
                changed = symbols[:position] + symbol + symbols[position + 1 :]
                assert not is_valid(changed)
                with pytest.raises(InvalidCaseNumber, match="misheard or mistyped"):
                    parse_case_number(changed)


def test_swapped_neighbours_are_caught_but_0_and_z() -> None:
    for first in ALPHABET:
        for second in ALPHABET:
            if first == second or {first, second} == {"0", "Z"}:
                continue
            body = "7" * 6 + first + second
            check = next(c for c in ALPHABET if is_valid(body + c))
            assert not is_valid("7" * 6 + second + first + check), (first, second)


def test_what_a_caller_reads_out_is_normalised() -> None:
    number = new_case_number()
    body = number[2:].replace("-", "")
    assert parse_case_number(body) == number  # without the C-
    assert parse_case_number(" c " + " ".join(body.lower())) == number
    assert parse_case_number(body.replace("0", "O").replace("1", "l")) == number
    assert parse_case_number("Ｃ－" + body) == number  # full width, as a Chinese IME types


def test_old_sequential_numbers_still_parse() -> None:
    assert parse_case_number("C-2026-000123") == "C-2026-000123"
    assert parse_case_number("c 2026 000123") == "C-2026-000123"
    assert parse_case_number("20261234567") == "C-2026-1234567"


@pytest.mark.parametrize("raw", ["", "C-", "C-ABC", "C-UUU-UUU-UUU", "C-AAA-AAA-AAA-AAA", "#$%"])
def test_what_is_no_case_number_says_what_one_looks_like(raw: str) -> None:
    with pytest.raises(InvalidCaseNumber, match="nine characters"):
        parse_case_number(raw)
