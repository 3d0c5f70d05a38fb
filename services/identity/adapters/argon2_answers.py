"""Knowledge answers hashed with Argon2id (argon2-cffi), behind the ``AnswerHasher`` port.

Scheme: ``argon2id(hex(HMAC-SHA256(pepper, normalised answer)))``, stored in the PHC
form argon2-cffi writes (``$argon2id$v=19$m=19456,t=2,p=1$salt$hash``). The pepper
is applied by an HMAC before the slow hash rather than as Argon2's ``secret`` input:
the high-level API (its encoding, ``verify`` and ``check_needs_rehash``) then does the
rest, and a copy of the stored hashes alone cannot be attacked without the pepper,
which never leaves the service's configuration.

Why here and not in ``domain/kba.py``: Argon2 is a C library reached through cffi,
and its cost parameters are a deployment choice; the domain keeps the normalisation
and the legacy PBKDF2 check, both pure functions of the standard library.
"""

from __future__ import annotations

import hashlib
import hmac

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity.domain import kba
from shared.offload import off_loop

# OWASP Password Storage Cheat Sheet, Argon2id: m=19 MiB, t=2, p=1 (equivalent to its
# m=46 MiB, t=1 option at less memory per concurrent check on a sync worker).
MEMORY_KIB = 19_456
TIME_COST = 2
PARALLELISM = 1
PREFIX = "$argon2id$"


class Argon2Answers:
    def __init__(
        self,
        pepper: bytes,
        *,
        memory_kib: int = MEMORY_KIB,
        time_cost: int = TIME_COST,
        parallelism: int = PARALLELISM,
    ) -> None:
        self._pepper = pepper
        self._ph = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    def _peppered(self, answer: str) -> str:
        normal = kba.normalise_answer(answer).encode()
        return hmac.new(self._pepper, normal, hashlib.sha256).hexdigest()

    def hash(self, answer: str) -> str:
        return off_loop(self._ph.hash, self._peppered(answer))

    def verify(self, answer: str, stored: str) -> tuple[bool, str | None]:
        """(the answer matches, the hash to store instead when it should be upgraded).

        A legacy PBKDF2 hash that matches is upgraded to Argon2id; an Argon2id hash made
        with other parameters than the current ones is re-hashed with them. Only on a
        match: a wrong answer never changes what is stored."""
        if stored.startswith(PREFIX):
            try:
                off_loop(self._ph.verify, stored, self._peppered(answer))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False, None
            return True, (self.hash(answer) if self._ph.check_needs_rehash(stored) else None)
        if off_loop(_legacy_matches, answer, stored, self._pepper):
            return True, self.hash(answer)
        return False, None


def _legacy_matches(answer: str, stored: str, pepper: bytes) -> bool:
    return kba.verify_answer(answer, stored, pepper=pepper)
