"""Session tokens: asymmetric JWTs (EdDSA Ed25519 or ES256), a key ring and JWKS.

Keys are PEM private keys, oldest first: the newest signs, every one verifies
(so tokens signed before a rotation stay valid until they expire), and all of
them are published at ``/.well-known/jwks.json``. ``kid`` is the RFC 7638
thumbprint of the public key. Verification pins the algorithm to the key the
``kid`` names - ``alg=none``, HS256 with the public key as secret, an unknown
``kid``, a wrong ``typ`` or ``iss``, or an expired token all fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from services.identity.domain.session import CLOCK_LEEWAY, TOKEN_TYPE

PEM_BLOCK = "-----BEGIN PRIVATE KEY-----"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any
    public: Any
    jwk: dict[str, str]


def _key(private: Any) -> SigningKey:
    public = private.public_key()
    if isinstance(private, ed25519.Ed25519PrivateKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
        alg = "EdDSA"
    elif isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        numbers = public.public_numbers()
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        alg = "ES256"
    else:
        raise ValueError("session keys must be Ed25519 or EC P-256 private keys")
    thumbprint = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode())
    kid = _b64(thumbprint.digest())
    return SigningKey(kid, alg, private, public, {**jwk, "kid": kid, "alg": alg, "use": "sig"})


def load_pem_keys(text: str) -> list[SigningKey]:
    blocks = [PEM_BLOCK + b for b in text.split(PEM_BLOCK)[1:]]
    return [_key(serialization.load_pem_private_key(b.strip().encode(), None)) for b in blocks]


def generate_pem(alg: str = "EdDSA") -> str:
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if alg == "EdDSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def dev_key_files(directory: Path) -> list[Path]:
    """The dev key ring under ``var``: generated once, shared by every worker.

    Written to a temporary file, then published with ``link`` (atomic, fails if
    another worker won), so no worker ever reads a half-written key.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = sorted(directory.glob("*.pem"))
    if files:
        return files
    path = directory / "0001.pem"
    tmp = directory / f".{os.getpid()}-{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_pem())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return [path]


class TokenService:
    def __init__(self, keys: Sequence[SigningKey], issuer: str, cache_size: int = 10_000) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = list(keys)
        self.by_kid = {k.kid: k for k in self.keys}
        self.current = self.keys[-1]
        self.issuer = issuer
        # Signature checks cost ~100 us of CPU; a token's verified claims never change,
        # so each process remembers them (bounded) and re-checks only the expiry.
        self._verified: dict[str, dict[str, Any]] = {}
        self.cache_size = cache_size

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims),
            self.current.private,
            algorithm=self.current.alg,
            headers={"kid": self.current.kid, "typ": TOKEN_TYPE},
        )

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a well-formed, correctly signed, unexpired token; else None."""
        if not isinstance(token, str) or len(token) > 8192:
            return None
        cached = self._verified.get(token)
        if cached is not None:
            return cached if cached["exp"] + CLOCK_LEEWAY >= time.time() else None
        claims = self._decode(token)
        if claims is not None and self.cache_size:
            if len(self._verified) >= self.cache_size:
                try:
                    self._verified.pop(next(iter(self._verified)))
                except (KeyError, RuntimeError, StopIteration):
                    self._verified.clear()
            self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
            key = self.by_kid.get(header.get("kid", ""))
            if key is None or header.get("typ") != TOKEN_TYPE or header.get("alg") != key.alg:
                return None
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[key.alg],
                issuer=self.issuer,
                leeway=CLOCK_LEEWAY,
                options={"require": ["exp", "iat", "iss", "sub", "sid"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
        if not isinstance(claims.get("amr", []), list) or not isinstance(claims["exp"], int):
            return None
        return claims

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk for k in reversed(self.keys)]}
