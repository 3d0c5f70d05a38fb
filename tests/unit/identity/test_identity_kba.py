from __future__ import annotations

import pytest

from services.identity.domain.errors import EnrollmentInvalid
from services.identity.domain.kba import (
    hash_answer,
    normalise_answer,
    validate_answers,
    verify_answer,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Paris ", "paris"),
        ("Ｐａｒｉｓ", "paris"),
        ("New   York\tCity", "new york city"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("ﬁdo", "fido"),
    ],
)
def test_answers_are_normalised_nfkc_casefolded_and_trimmed(raw: str, normal: str) -> None:
    assert normalise_answer(raw) == normal


def test_a_hash_is_salted_and_verifies_the_normalised_answer() -> None:
    one, two = hash_answer("Rex", iterations=1000), hash_answer("Rex", iterations=1000)
    assert one != two and "rex" not in one.lower().split("$")[-1]
    assert verify_answer("  REX ", one)
    assert not verify_answer("Max", one)


def test_a_pepper_is_part_of_the_hash() -> None:
    stored = hash_answer("rex", pepper=b"p1", iterations=1000)
    assert verify_answer("rex", stored, pepper=b"p1")
    assert not verify_answer("rex", stored, pepper=b"p2")


@pytest.mark.parametrize(
    "answers",
    [{}, {"Bad-Id": "x"}, {"pet": "   "}, {f"q{i}": "a" for i in range(11)}, {"pet": "x" * 201}],
)
def test_invalid_answer_sets_are_refused(answers: dict[str, str]) -> None:
    with pytest.raises(EnrollmentInvalid):
        validate_answers(answers)
