"""Session tokens: pinned algorithms, key rotation, forged and expired tokens."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from services.identity.adapters.jwt_tokens import TokenService, generate_pem, load_pem_keys
from services.identity.app import create_app
from shared.config import Settings


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "iss",
        "sub": "c-1",
        "sid": "s-1",
        "iat": now,
        "exp": now + 600,
        "acr": "1",
        "amr": ["totp"],
        "tier": "default",
        "chn": "chat",
        **over,
    }


def test_a_token_carries_kid_and_typ_and_verifies() -> None:
    tokens = TokenService(load_pem_keys(generate_pem()), "iss")
    token = tokens.sign(claims())
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": tokens.current.kid, "typ": "sb-session+jwt"}
    assert tokens.verify(token)["sub"] == "c-1"


def test_es256_keys_work_too() -> None:
    tokens = TokenService(load_pem_keys(generate_pem("ES256")), "iss")
    token = tokens.sign(claims())
    assert jwt.get_unverified_header(token)["alg"] == "ES256" and tokens.verify(token)


def test_forged_tokens_are_never_valid() -> None:
    tokens = TokenService(load_pem_keys(generate_pem()), "iss")
    kid = tokens.current.kid
    good = tokens.sign(claims())
    head, body, sig = good.split(".")
    none_header = b64(json.dumps({"alg": "none", "kid": kid, "typ": "sb-session+jwt"}).encode())
    public_pem = tokens.current.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "sb-session+jwt"}).encode())
    import hashlib
    import hmac

    hs_sig = b64(hmac.new(public_pem, f"{hs_header}.{body}".encode(), hashlib.sha256).digest())
    other = TokenService(load_pem_keys(generate_pem()), "iss")
    forged = {
        "alg none": f"{none_header}.{body}.",
        "HS256 with the public key": f"{hs_header}.{body}.{hs_sig}",
        "unknown kid": other.sign(claims()),
        "wrong typ": jwt.encode(
            claims(), tokens.current.private, algorithm="EdDSA", headers={"kid": kid, "typ": "JWT"}
        ),
        "wrong iss": tokens.sign(claims(iss="evil")),
        "expired beyond the leeway": tokens.sign(claims(exp=int(time.time()) - 31)),
        "tampered body": f"{head}.{b64(json.dumps(claims(sub='c-2')).encode())}.{sig}",
        "garbage": "not.a.token",
    }
    for name, token in forged.items():
        assert tokens.verify(token) is None, name
    assert tokens.verify(tokens.sign(claims(exp=int(time.time()) - 10)))  # inside the leeway


def test_after_rotation_new_tokens_use_the_newest_key_and_old_ones_stay_valid() -> None:
    old_pem, new_pem = generate_pem(), generate_pem()
    before = TokenService(load_pem_keys(old_pem), "iss")
    old_token = before.sign(claims())
    after = TokenService(load_pem_keys(old_pem + new_pem), "iss")
    assert jwt.get_unverified_header(after.sign(claims()))["kid"] == after.keys[-1].kid
    assert after.verify(old_token)
    assert [k["kid"] for k in after.jwks()["keys"]] == [after.keys[1].kid, after.keys[0].kid]


def test_keys_come_from_the_environment_and_are_published(
    make_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    path = tmp_path / "k.pem"
    path.write_text(generate_pem())
    app = create_app(make_settings("identity", IDENTITY_SIGNING_KEY_FILES=str(path)))
    jwks = app.test_client().get("/.well-known/jwks.json").json
    assert jwks["keys"][0]["kid"] == load_pem_keys(path.read_text())[0].kid


def test_a_forged_token_is_not_active_over_http(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]]
) -> None:
    app = create_app(make_settings("identity"))
    service = app.extensions["sb"].extras["identity"]
    token = service.tokens.sign(claims(iss=service.config.issuer))
    r = app.test_client().post(
        "/v1/sessions/introspect", json={"token": token}, headers=headers("ivr")
    )
    assert r.json == {"active": False}  # well signed, but no such session server-side


def test_a_remembered_token_still_expires() -> None:
    tokens = TokenService(load_pem_keys(generate_pem()), "iss")
    token = tokens.sign(claims(exp=int(time.time()) - 29))
    assert tokens.verify(token) is not None
    assert tokens.verify(token) is not None  # from the cache
    tokens._verified[token] = {**tokens._verified[token], "exp": int(time.time()) - 31}
    assert tokens.verify(token) is None


def test_the_cache_is_bounded() -> None:
    tokens = TokenService(load_pem_keys(generate_pem()), "iss", cache_size=3)
    for n in range(5):
        assert tokens.verify(tokens.sign(claims(sid=f"s-{n}")))
    assert len(tokens._verified) == 3
