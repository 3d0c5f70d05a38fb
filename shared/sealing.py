"""Authenticated encryption of data kept at rest (AES-256-GCM, keys from HKDF).

A ``Sealer`` derives one key per secret with HKDF-SHA256 under a purpose
label, so one secret never keys two purposes. The first secret seals; every
secret opens, which is how a key is rotated: put the new secret first, keep
the old ones after it until nothing sealed under them remains.

A sealed value is ``<key id>.<base64(nonce | ciphertext | tag)>``. The key id
(the first 4 bytes of SHA-256 of the derived key, in hex) picks the key to
open with; it says nothing about the key itself. The associated data binds a
value to the record it belongs to: a value copied into another record does
not open.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


def derive(secret: str, info: bytes) -> bytes:
    """A 32-byte key for the purpose ``info`` from a configured secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


class Sealer:
    def __init__(self, secrets: Sequence[str], info: bytes) -> None:
        if not secrets:
            raise ValueError("a Sealer needs at least one secret")
        self._keys: dict[str, AESGCM] = {}
        for secret in secrets:
            key = derive(secret, info)
            self._keys.setdefault(hashlib.sha256(key).hexdigest()[:8], AESGCM(key))
        self._current = next(iter(self._keys))

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(NONCE)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, aad)
        return f"{self._current}.{base64.b64encode(nonce + sealed).decode()}"

    def open(self, value: str, aad: bytes) -> bytes | None:
        """The plaintext, or None when ``value`` does not open (unknown key, another
        record's value, damaged). A value without a key id is the layout from before key
        ids existed (plain base64) and is tried under the sealing key."""
        kid, dot, body = value.partition(".")
        aead = self._keys.get(kid) if dot else self._keys[self._current]
        if aead is None:
            return None
        try:
            raw = base64.b64decode(body if dot else value, validate=True)
            return aead.decrypt(raw[:NONCE], raw[NONCE:], aad)
        except (InvalidTag, ValueError):
            return None

    def current(self, value: str) -> bool:
        """Sealed under the sealing key (not one kept only to open old values)?"""
        return value.partition(".")[0] == self._current
