"""Identifier normalisation and junk rules.

A profile is found by identifiers of typed values. Each value is normalised
before it is stored or looked up, so every spelling of one number or address
lands on one row: phones become E.164 (``phonenumbers``, a pure library;
default region CN), emails are trimmed and lower-cased, other types trimmed.
Placeholder values that channels send when they know nothing ("null",
"anonymous", "-1", all zeros, all dashes, plus a configurable list) are
refused for every type: attached to a profile they would merge strangers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers

from services.crm.domain.errors import InvalidIdentifier, JunkIdentifier

BUILTIN_TYPES = ("phone", "email", "wechat_openid", "app_user_id", "account_number")
DEFAULT_JUNK = (
    "null",
    "nil",
    "none",
    "undefined",
    "anonymous",
    "unknown",
    "n/a",
    "na",
    "-1",
    "0",
    "noemail@example.com",
)
MAX_VALUE_LENGTH = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_ALL_SAME_FILLER = re.compile(r"^[0\-_.\s*xX]+$")  # "0000000", "---", "000-000", "***"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")


@dataclass(frozen=True)
class Identifier:
    type: str
    value: str  # normalised


@dataclass(frozen=True)
class IdentifierPolicy:
    default_region: str = "CN"
    extra_types: tuple[str, ...] = ()
    extra_junk: tuple[str, ...] = ()
    _junk: frozenset[str] = field(init=False, repr=False, compare=False)
    _types: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.extra_types:
            if not _TYPE_NAME.match(name):
                raise ValueError(f"identifier type {name!r} must match {_TYPE_NAME.pattern}")
        junk = {v.strip().lower() for v in (*DEFAULT_JUNK, *self.extra_junk) if v.strip()}
        object.__setattr__(self, "_junk", frozenset(junk))
        # Once, not per identifier normalised.
        types = BUILTIN_TYPES + tuple(t for t in self.extra_types if t not in BUILTIN_TYPES)
        object.__setattr__(self, "_types", types)

    @property
    def types(self) -> tuple[str, ...]:
        return self._types

    def is_junk(self, raw: str) -> bool:
        value = raw.strip().lower()
        return not value or value in self._junk or bool(_ALL_SAME_FILLER.match(value))

    def normalise(self, type_: str, raw: str) -> Identifier:
        """The canonical form of one identifier; raises on junk or malformed values."""
        if type_ not in self.types:
            raise InvalidIdentifier(
                f"unknown identifier type {type_!r}; known: {', '.join(self.types)}"
            )
        if not isinstance(raw, str) or len(raw) > MAX_VALUE_LENGTH:
            raise InvalidIdentifier(f"{type_} value must be a string of at most 200 characters")
        if self.is_junk(raw):
            raise JunkIdentifier(f"{type_} value {raw.strip()!r} is a placeholder")
        if type_ == "phone":
            value = normalise_phone(raw, self.default_region)
        elif type_ == "email":
            value = _nfkc(raw).strip().lower()
            if not _EMAIL.match(value):
                raise InvalidIdentifier(f"{raw.strip()!r} is not an email address")
        else:
            value = raw.strip()
            if any(ch.isspace() for ch in value) or not value.isprintable():
                raise InvalidIdentifier(f"{type_} value must not contain spaces or control chars")
        if self.is_junk(value):
            raise JunkIdentifier(f"{type_} value {raw.strip()!r} is a placeholder")
        if len(value) > MAX_VALUE_LENGTH:  # lower-casing can lengthen: "İ" -> "i̇"
            raise InvalidIdentifier(f"{type_} value must be at most 200 characters once normalised")
        return Identifier(type_, value)

    def normalise_all(self, pairs: Iterable[tuple[str, str]]) -> list[Identifier]:
        """Normalised and de-duplicated, first occurrence order kept."""
        seen: dict[Identifier, None] = {}
        for type_, raw in pairs:
            seen.setdefault(self.normalise(type_, raw), None)
        return list(seen)

    def candidates(self, query: str) -> list[Identifier]:
        """Every identifier a free-text search term could be (for profile search)."""
        found: list[Identifier] = []
        for type_ in self.types:
            try:
                found.append(self.normalise(type_, query))
            except InvalidIdentifier:
                continue
        return found


def name_key(name: str | None) -> str | None:
    """A name's search key: case-folded and cut to the stored key's length (folding can
    lengthen a name, "ß" -> "ss"); a search term is keyed the same way, so it still
    finds the name it is a prefix of."""
    return name.casefold()[:MAX_VALUE_LENGTH] if name else None


def _nfkc(text: str) -> str:
    """Full-width forms as their ASCII ("１３８", "（+86）", "＠"): what a Chinese input
    method types is the same number or address."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


_PHONE_CHARS = re.compile(r"^[0-9+()\-.\s/]+\Z")
_PHONE_SEPARATORS = re.compile(r"[()\-.\s/]")


def normalise_phone(raw: str, region: str) -> str:
    """E.164: "+86 138 0013 8000", "13800138000", "0086-138-0013-8000" -> "+8613800138000"."""
    text = _nfkc(raw).strip()
    if not _PHONE_CHARS.match(text):
        raise InvalidIdentifier(f"{text!r} is not a phone number")
    digits_plus = _PHONE_SEPARATORS.sub("", text)
    if digits_plus.startswith("00"):  # international prefix written out (0086...)
        digits_plus = "+" + digits_plus[2:]
    try:
        number = phonenumbers.parse(digits_plus, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier(f"{text!r} is not a possible phone number")
    if number.national_number == 0:  # "+86 000 0000 0000": zeros behind a country code
        raise JunkIdentifier(f"{text!r} is a placeholder")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
