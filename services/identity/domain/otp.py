"""One-time passwords: the pure rules of TOTP (RFC 6238) and delivered codes.

TOTP codes themselves are computed and checked by pyotp behind the ``TotpCodes``
port (adapters/pyotp_totp.py; no library in the domain). The atomic "a time step
is accepted once" lives in the store; here ``totp_step`` says which step is now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote, urlencode

TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_WINDOW = 1  # +-1 step of server time
OTP_DEFAULT_LIFETIME = 300
OTP_MAX_LIFETIME = 600


def totp_step(unix_time: float, step: int = TOTP_STEP, t0: int = 0) -> int:
    """The RFC 6238 time step counter of an instant: what the store claims once."""
    return int((unix_time - t0) // step)


def well_formed_code(code: str, digits: int = TOTP_DIGITS) -> bool:
    """Only ASCII digits of the right length are worth an HMAC."""
    return len(code) == digits and code.isascii() and code.isdigit()


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
