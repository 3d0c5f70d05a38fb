"""Knowledge-based answers: normalised, then stored as salted slow hashes.

New hashes are Argon2id (adapters/argon2_answers.py); ``hash_answer`` and
``verify_answer`` are the PBKDF2 scheme of the hashes stored before it, still checked
(and upgraded on a right answer) until every customer has answered once."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping

from services.identity.domain.errors import EnrollmentInvalid

QUESTION_ID = re.compile(r"^[a-z0-9_]{1,40}\Z")
MAX_QUESTIONS = 10
MAX_ANSWER_LENGTH = 200
ITERATIONS = 60_000  # the legacy PBKDF2-SHA256 count (a stored hash carries its own)


def normalise_answer(answer: str) -> str:
    """NFKC, casefold, trimmed, inner whitespace collapsed: ' Ｐａｒｉｓ ' == 'paris'."""
    text = unicodedata.normalize("NFKC", answer).casefold()
    return " ".join(text.split())


def validate_answers(answers: Mapping[str, str]) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    if not 1 <= len(answers) <= MAX_QUESTIONS:
        errors["answers"] = [f"give from 1 to {MAX_QUESTIONS} answers"]
    for qid, answer in answers.items():
        if not QUESTION_ID.match(qid):
            errors.setdefault(qid, []).append("question ids are [a-z0-9_]{1,40}")
        elif not isinstance(answer, str) or not normalise_answer(answer):
            errors.setdefault(qid, []).append("the answer is empty")
        elif len(answer) > MAX_ANSWER_LENGTH:
            errors.setdefault(qid, []).append(f"at most {MAX_ANSWER_LENGTH} characters")
    if errors:
        raise EnrollmentInvalid("the knowledge answers are not valid", errors)
    return dict(answers)


def hash_answer(
    answer: str, *, pepper: bytes = b"", salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac(
        "sha256", pepper + normalise_answer(answer).encode(), salt, iterations
    )
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_answer(answer: str, stored: str, *, pepper: bytes = b"") -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    again = hash_answer(answer, pepper=pepper, salt=bytes.fromhex(salt), iterations=int(iterations))
    return hmac.compare_digest(again.rsplit("$", 1)[1], digest)
