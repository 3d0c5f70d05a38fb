"""TOTP codes (RFC 6238) computed and checked by pyotp, the library the design names.

The domain keeps the pure rules (the time step of an instant, the shape of a code);
that a step is accepted once is the store's atomic claim, not this module's."""

from __future__ import annotations

import hashlib
import hmac

import pyotp

from services.identity.domain.otp import (
    TOTP_DIGITS,
    TOTP_STEP,
    TOTP_WINDOW,
    totp_step,
    well_formed_code,
)


class PyotpCodes:
    """The ``TotpCodes`` port over ``pyotp.TOTP``."""

    def __init__(
        self, *, digits: int = TOTP_DIGITS, interval: int = TOTP_STEP, digest: str = "sha1"
    ) -> None:
        self.digits, self.interval = digits, interval
        self.digest = getattr(hashlib, digest)  # pyotp takes the hashlib constructor

    def _totp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self.digits, digest=self.digest, interval=self.interval)

    def code(self, secret: str, step: int) -> str:
        """The code of time step ``step`` (HOTP of the step counter)."""
        return self._totp(secret).generate_otp(step)

    def match(
        self,
        secret: str,
        code: str,
        unix_time: float,
        *,
        after_step: int | None = None,
        window: int = TOTP_WINDOW,
    ) -> int | None:
        """The time step ``code`` belongs to within ``window`` steps of ``unix_time``,
        never one <= ``after_step``. Not ``TOTP.verify``: it stops at the first match
        and does not say which step matched, which the replay claim needs."""
        if not well_formed_code(code, self.digits):
            return None
        totp = self._totp(secret)
        now = totp_step(unix_time, self.interval)
        found = None
        for step in range(now - window, now + window + 1):
            # Compare every candidate: the time taken does not depend on which matched.
            if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
                found = step
        if found is None or (after_step is not None and found <= after_step):
            return None
        return found
