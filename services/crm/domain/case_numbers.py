r"""Case numbers a customer can read over the phone but nobody can guess.

Shape: ``C-`` then nine symbols of Crockford's base32 in groups of three,
``C-7KQ-4M2-XWD``: eight random symbols (40 bits from ``secrets``) and one
check symbol (Luhn mod 32 over the same alphabet). The alphabet has no I, L,
O or U, so what is written is what is said; input is case-insensitive, and a
misread O is taken as 0, I and L as 1. The check symbol catches every single
misheard or mistyped symbol and every swap of two neighbours but 0/Z.

No year: it would tell an enumerator when the case was opened, and the
year of the server (UTC) is not always the customer's. Numbers of the old
sequential shape (``C-2026-000123``) stay valid for lookups.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

from services.crm.domain.errors import CrmError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_SYMBOLS = 8
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_MISREAD = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_.]")
_LEGACY = re.compile(r"C?(\d{4})(\d{6,})")


class InvalidCaseNumber(CrmError):
    """Not a case number of either shape, or one whose check symbol does not match."""

    slug = "invalid-case-number"
    title = "Invalid Case Number"

    @property
    def errors(self) -> dict[str, list[str]]:
        return {"case_number": [str(self)]}


def _luhn_sum(symbols: str, *, doubled_first: bool) -> int:
    """Luhn mod 32 from the right: every second symbol counts double, folded."""
    total, double = 0, doubled_first
    for symbol in reversed(symbols):
        addend = _VALUE[symbol] * (2 if double else 1)
        total += addend // 32 + addend % 32
        double = not double
    return total


def check_symbol(body: str) -> str:
    return ALPHABET[(32 - _luhn_sum(body, doubled_first=True) % 32) % 32]


def is_valid(symbols: str) -> bool:
    """``symbols``: a body followed by its check symbol."""
    return _luhn_sum(symbols, doubled_first=False) % 32 == 0


def _display(symbols: str) -> str:
    return "C-" + "-".join(symbols[i : i + 3] for i in range(0, len(symbols), 3))


def new_case_number() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_SYMBOLS))
    return _display(body + check_symbol(body))


def parse_case_number(raw: str) -> str:
    """The stored form of what a customer or agent typed; InvalidCaseNumber otherwise.
    Pure: it says nothing about whether such a case exists."""
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()
    legacy = _LEGACY.fullmatch(text)
    if legacy:
        return f"C-{legacy.group(1)}-{legacy.group(2)}"
    text = text.translate(_MISREAD)
    symbols = text[1:] if len(text) == RANDOM_SYMBOLS + 2 and text[0] == "C" else text
    if len(symbols) != RANDOM_SYMBOLS + 1 or any(s not in _VALUE for s in symbols):
        raise InvalidCaseNumber(
            "a case number is C- and nine characters (digits and letters without "
            "I, L, O, U), like C-7KQ-4M2-XWD"
        )
    if not is_valid(symbols):
        raise InvalidCaseNumber(
            "this case number's last character does not match the others: "
            "a character was misheard or mistyped"
        )
    return _display(symbols)
