"""Texts a customer reads (codes, notifications), in every language the product speaks.

The messages live in gettext catalogs, ``shared/locale/<language>/LC_MESSAGES/
switchboard.po``, one for every service: English source strings are the message ids
(``translate("Your verification code")``), found in the code by Babel's extractor
(``babel.cfg``, ``make messages``). The ``.po`` files are compiled in memory the first
time a language is used (``babel.messages.mofile``): no binary ``.mo`` in git, nothing to
compile at install, and what is tested is what runs.

Which language a customer reads: the first of the candidates (the request's
``language``, then the profile's) that is supported, else the deployment's default
(``SB_DEFAULT_LANGUAGE``, ``zh``: the product's field is mainland China, the delivery
policy's default country is 86). A tag is matched by its primary subtag: ``zh-CN``,
``zh_Hans`` and ``ZH`` read ``zh``; there is no traditional catalog yet, so
``zh-TW`` reads simplified too.
"""

from __future__ import annotations

import io
import re
from functools import cache
from importlib.resources import files
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from shared.config import ConfigError, Settings

SUPPORTED = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
DOMAIN = "switchboard"
# A BCP 47 tag's shape (as the CRM validates a profile's language), "_" as POSIX writes
# it; ``^...$`` for request schemas (``shared.validation.Exact``), matched whole here.
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,4}$"
_TAG = re.compile(LANGUAGE_PATTERN)
# A voice text reads a code digit by digit: with the digits run together a
# text-to-speech engine says "one hundred twenty-three thousand..." (zh: 十二万三千...).
_DIGIT_SEPARATOR = {"zh": "，", "en": ", "}


def supported(tag: str | None) -> str | None:
    """The supported language a tag asks for (``zh-CN`` -> ``zh``), or None."""
    if not tag or _TAG.fullmatch(tag) is None:
        return None
    primary = re.split(r"[-_]", tag, maxsplit=1)[0].lower()
    return primary if primary in SUPPORTED else None


def choose(*candidates: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The first candidate that is supported (request before profile), else ``default``."""
    for tag in candidates:
        language = supported(tag)
        if language is not None:
            return language
    return supported(default) or DEFAULT_LANGUAGE


def default_language(settings: Settings) -> str:
    """``SB_DEFAULT_LANGUAGE``: a language without a catalog stops the service at start.

    Every catalog is compiled here, at start: a broken one stops the service instead of
    failing a customer's code, and the first code sent does not wait for it (~50 ms)."""
    raw = settings.str_env("SB_DEFAULT_LANGUAGE", DEFAULT_LANGUAGE)
    language = supported(raw.strip())
    if language is None:
        raise ConfigError(f"SB_DEFAULT_LANGUAGE must be one of {', '.join(SUPPORTED)}, got {raw!r}")
    for each in SUPPORTED:
        _translations(each)
    return language


def catalog_text(language: str) -> str:
    """The ``.po`` source of a language's catalog."""
    path = files("shared") / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    return path.read_text(encoding="utf-8")


@cache
def _translations(language: str) -> Translations:
    catalog = read_po(io.StringIO(catalog_text(language)), locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def translate(msgid: str, language: str, **values: Any) -> str:
    """``msgid`` in ``language`` (an unsupported one reads the default), with
    ``%(name)s`` placeholders filled from ``values``."""
    text = _translations(choose(language)).gettext(msgid)
    return text % values if values else text


def translate_plural(singular: str, plural: str, n: int, language: str, **values: Any) -> str:
    """The form of ``n`` in ``language`` (Chinese has one, English two); ``values``
    fill the placeholders, ``n`` among them when they do not name it."""
    text = _translations(choose(language)).ngettext(singular, plural, n)
    return text % {"n": n, **values}


def spell_digits(code: str, language: str) -> str:
    """A code as a voice reads it: one digit at a time, with a pause between."""
    return _DIGIT_SEPARATOR[choose(language)].join(code)
