"""One-time passwords: HOTP (RFC 4226), TOTP (RFC 6238) and delivered codes.

Implemented with ``hmac``/``hashlib`` so the rules stay testable against the
RFC vectors without a library. The atomic "a time step is accepted once"
lives in the store; here ``match_totp`` only says which step a code matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote, urlencode

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_WINDOW = 1  # +-1 step of server time
OTP_DEFAULT_LIFETIME = 300
OTP_MAX_LIFETIME = 600


def hotp(key: bytes, counter: int, digits: int = 6, digest: str = "sha1") -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC(key, counter)."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), DIGESTS[digest]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def totp_step(unix_time: float, step: int = TOTP_STEP, t0: int = 0) -> int:
    return int((unix_time - t0) // step)


def totp(
    key: bytes, unix_time: float, digits: int = 8, digest: str = "sha1", step: int = TOTP_STEP
) -> str:
    """RFC 6238: HOTP over the time step counter."""
    return hotp(key, totp_step(unix_time, step), digits, digest)


def match_totp(
    key: bytes,
    code: str,
    unix_time: float,
    *,
    after_step: int | None = None,
    window: int = TOTP_WINDOW,
    digits: int = TOTP_DIGITS,
) -> int | None:
    """The time step ``code`` belongs to within the window, never one <= ``after_step``."""
    if not (len(code) == digits and code.isascii() and code.isdigit()):
        return None
    now = totp_step(unix_time)
    found = None
    for step in range(now - window, now + window + 1):
        # Compare every candidate: the time taken does not depend on which matched.
        if hmac.compare_digest(hotp(key, step, digits), code) and found is None:
            found = step
    if found is None or (after_step is not None and found <= after_step):
        return None
    return found


def new_base32_secret(nbytes: int = 20) -> str:
    """160 bits by default (RFC 4226 recommends it; authenticator apps expect base32)."""
    return base64.b32encode(secrets.token_bytes(nbytes)).decode().rstrip("=")


def decode_base32(secret: str) -> bytes:
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    """Key URI Format (Google Authenticator wiki): otpauth://totp/Issuer:account?..."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": TOTP_DIGITS,
            "period": TOTP_STEP,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


# -- delivered codes (sms / email / voice) --------------------------------------
def new_code(digits: int = 6) -> str:
    return str(secrets.randbelow(10**digits)).zfill(digits)


def code_hash(key: bytes, verification_id: str, factor: str, code: str) -> str:
    """Keyed hash bound to the verification and factor that issued the code."""
    message = f"{verification_id}\x1f{factor}\x1f{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    verification_id: str
    factor: str
    digest: str
    issued_at: float
    expires_at: float


class CodeCheck(Enum):
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"


def issue_code(
    key: bytes, verification_id: str, factor: str, now: float, lifetime: int = OTP_DEFAULT_LIFETIME
) -> tuple[str, IssuedCode]:
    """A fresh code and what may be stored about it (its keyed hash, never the code)."""
    if not 1 <= lifetime <= OTP_MAX_LIFETIME:
        raise ValueError(f"an OTP lifetime must be 1..{OTP_MAX_LIFETIME} s")
    code = new_code()
    record = IssuedCode(
        verification_id, factor, code_hash(key, verification_id, factor, code), now, now + lifetime
    )
    return code, record


def check_code(
    key: bytes, record: IssuedCode, verification_id: str, factor: str, code: str, now: float
) -> CodeCheck:
    if now >= record.expires_at:
        return CodeCheck.EXPIRED
    presented = code_hash(key, verification_id, factor, code)
    if record.verification_id != verification_id or record.factor != factor:
        return CodeCheck.WRONG
    return CodeCheck.OK if hmac.compare_digest(presented, record.digest) else CodeCheck.WRONG
