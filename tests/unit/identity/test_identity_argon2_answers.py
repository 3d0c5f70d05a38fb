"""The Argon2id answer hasher: OWASP's parameters, the pepper, upgrades of older hashes."""

from __future__ import annotations

from services.identity.adapters.argon2_answers import Argon2Answers
from services.identity.domain import kba


def test_the_default_parameters_are_owasps_argon2id() -> None:
    stored = Argon2Answers(b"pepper").hash("Rex")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "rex" not in stored.lower().split("$")[-1]


def test_a_hash_verifies_the_normalised_answer_under_its_pepper_only() -> None:
    answers = Argon2Answers(b"p1", memory_kib=64, time_cost=1)
    stored = answers.hash("Rex")
    assert answers.hash("Rex") != stored  # salted
    assert answers.verify("  REX ", stored) == (True, None)
    assert answers.verify("Max", stored) == (False, None)
    assert Argon2Answers(b"p2", memory_kib=64, time_cost=1).verify("rex", stored) == (False, None)


def test_a_legacy_pbkdf2_hash_verifies_and_is_replaced_by_argon2id_when_right() -> None:
    answers = Argon2Answers(b"p1", memory_kib=64, time_cost=1)
    legacy = kba.hash_answer("Rex", pepper=b"p1", iterations=1000)
    assert answers.verify("max", legacy) == (False, None)
    ok, upgraded = answers.verify("rex", legacy)
    assert ok and upgraded is not None and upgraded.startswith("$argon2id$")
    assert answers.verify("rex", upgraded) == (True, None)


def test_a_hash_of_weaker_parameters_is_rehashed_with_the_current_ones() -> None:
    weak = Argon2Answers(b"p1", memory_kib=64, time_cost=1).hash("rex")
    ok, upgraded = Argon2Answers(b"p1", memory_kib=128, time_cost=2).verify("rex", weak)
    assert ok and upgraded is not None and "m=128,t=2,p=1" in upgraded


def test_a_malformed_stored_value_never_matches() -> None:
    answers = Argon2Answers(b"p1", memory_kib=64, time_cost=1)
    assert answers.verify("rex", "$argon2id$junk") == (False, None)
    assert answers.verify("rex", "") == (False, None)
