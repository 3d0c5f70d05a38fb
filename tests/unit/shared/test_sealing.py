"""Sealing at rest: a value opens only with its record's associated data and a known key."""

from __future__ import annotations

import pytest

from shared.sealing import Sealer

INFO = b"test:v1"


def test_a_sealed_value_opens_to_the_plaintext_and_does_not_contain_it() -> None:
    sealer = Sealer(["s1"], INFO)
    sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", b"record-1")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert sealer.open(sealed, b"record-1") == b"JBSWY3DPEHPK3PXP"
    # A fresh nonce each time: the same plaintext never seals to the same value.
    assert sealer.seal(b"JBSWY3DPEHPK3PXP", b"record-1") != sealed


def test_a_value_copied_to_another_record_does_not_open() -> None:
    sealer = Sealer(["s1"], INFO)
    assert sealer.open(sealer.seal(b"x", b"record-1"), b"record-2") is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # ciphertext or tag
        lambda v: "00000000" + v[8:],  # a key id nobody has
        lambda v: v.split(".")[0] + ".not base64!",
        lambda v: v.split(".")[0],
        lambda v: "",
    ],
)
def test_a_damaged_value_does_not_open(damage: object) -> None:
    sealer = Sealer(["s1"], INFO)
    sealed = sealer.seal(b"payload", b"r")
    assert sealer.open(damage(sealed), b"r") is None  # type: ignore[operator]


def test_rotation_the_first_secret_seals_and_every_secret_opens() -> None:
    old = Sealer(["old"], INFO)
    sealed_before = old.seal(b"before", b"r")
    rotated = Sealer(["new", "old"], INFO)
    assert rotated.open(sealed_before, b"r") == b"before"
    assert not rotated.current(sealed_before)
    sealed_after = rotated.seal(b"after", b"r")
    assert rotated.current(sealed_after)
    assert old.open(sealed_after, b"r") is None  # sealed under the new key only
    assert Sealer(["new"], INFO).open(sealed_after, b"r") == b"after"


def test_one_secret_keys_each_purpose_separately() -> None:
    sealed = Sealer(["s1"], b"purpose-a").seal(b"x", b"r")
    assert Sealer(["s1"], b"purpose-b").open(sealed, b"r") is None


def test_a_sealer_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        Sealer([], INFO)


def test_an_idempotency_record_stored_before_key_ids_still_opens() -> None:
    import base64
    import json
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from shared.idempotency import Keys
    from shared.sealing import derive

    # The layout idempotency records had before shared/sealing.py: base64(nonce | ct).
    aead = AESGCM(derive("secret", b"sb:idempotency:aes-gcm:v1"))
    nonce = os.urandom(12)
    old = base64.b64encode(nonce + aead.encrypt(nonce, json.dumps({"a": 1}).encode(), b"k"))
    assert Keys("secret").open("k", old.decode()) == {"a": 1}
    assert Keys("other").open("k", old.decode()) is None
