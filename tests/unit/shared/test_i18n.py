"""The message catalogs (shared/locale) and the choice of a customer's language."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from shared import i18n
from shared.config import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[3]
KEYWORDS = {"translate": None, "translate_plural": (1, 2)}  # as `make messages` extracts
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
CJK = re.compile(r"[\u4e00-\u9fff]")


def extracted() -> set[str]:
    """Every message id the code passes to translate / translate_plural (the singular)."""
    method_map, options_map = parse_mapping_cfg(io.StringIO((ROOT / "babel.cfg").read_text()))
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, comment_tags=()
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog(language: str) -> Catalog:
    return read_po(io.StringIO(i18n.catalog_text(language)), locale=language)


def ids(cat: Catalog) -> set[str]:
    return {m.id[0] if isinstance(m.id, tuple) else m.id for m in cat if m.id}


def test_every_message_the_code_uses_is_in_the_template_and_both_catalogs() -> None:
    used = extracted()
    assert len(used) >= 5  # the delivered codes' texts at least: the extractor found them
    template = read_po(io.StringIO((ROOT / "shared/locale/switchboard.pot").read_text()))
    assert ids(template) == used, "run `make messages`"
    for language in i18n.SUPPORTED:
        assert ids(catalog(language)) == used, f"{language}: run `make messages`"


@pytest.mark.parametrize("language", i18n.SUPPORTED)
def test_every_translation_is_there_with_the_same_placeholders(language: str) -> None:
    cat = catalog(language)
    for message in cat:
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert len(forms) == cat.num_plurals if message.pluralizable else len(forms) == 1
        wanted = {frozenset(PLACEHOLDER.findall(s)) for s in sources}
        assert len(wanted) == 1, f"singular and plural differ: {sources}"
        for form in forms:
            assert form.strip(), f"{language}: no translation of {sources[0]!r}"
            assert frozenset(PLACEHOLDER.findall(form)) == next(iter(wanted)), (language, form)
            if language == "zh":  # translated, not the English copied over
                assert CJK.search(form), form
        assert not message.fuzzy, f"{language}: {sources[0]!r} is fuzzy"
        assert not list(message.check(cat)), (language, sources[0])  # Babel's own checkers


def test_a_message_reads_in_the_language_asked() -> None:
    assert i18n.translate("Your verification code", "zh") == "您的验证码"
    assert i18n.translate("Your verification code", "en") == "Your verification code"


def test_plural_forms_follow_the_language() -> None:
    singular = (
        "Your verification code is %(code)s. It expires in %(n)s minute. "
        "Never share it with anyone."
    )
    plural = singular.replace("minute.", "minutes.")
    one = i18n.translate_plural(singular, plural, 1, "en", code="123456")
    five = i18n.translate_plural(singular, plural, 5, "en", code="123456")
    assert "in 1 minute." in one and "in 5 minutes." in five
    assert "5 分钟内有效" in i18n.translate_plural(singular, plural, 5, "zh", code="123456")


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("zh_Hans_CN", "zh"),
        ("ZH", "zh"),
        ("zh-TW", "zh"),  # no traditional catalog: simplified reads better than English
        ("en", "en"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("fr", None),
        ("fr-FR", None),
        ("", None),
        (None, None),
        ("zh\n", None),
        ("z", None),
        ("chinese", None),
    ],
)
def test_a_tag_is_matched_by_its_primary_subtag(tag: str | None, language: str | None) -> None:
    assert i18n.supported(tag) == language


def test_the_first_supported_candidate_wins_then_the_default() -> None:
    assert i18n.choose("en", "zh") == "en"  # the request before the profile
    assert i18n.choose("fr", "en") == "en"  # a language without a catalog is passed over
    assert i18n.choose(None, None) == "zh"
    assert i18n.choose("fr", None, default="en") == "en"
    assert i18n.translate("Your verification code", "fr") == "您的验证码"


def test_a_voice_reads_the_digits_one_by_one() -> None:
    assert i18n.spell_digits("012345", "en") == "0, 1, 2, 3, 4, 5"
    assert i18n.spell_digits("012345", "zh") == "0，1，2，3，4，5"


def test_the_default_language_is_zh_and_set_by_sb_default_language() -> None:
    def settings(**env: str) -> Settings:
        return Settings.from_env({"SB_ENV": "dev", **env}, service="identity")

    assert i18n.default_language(settings()) == "zh"
    assert i18n.default_language(settings(SB_DEFAULT_LANGUAGE="en-US")) == "en"
    with pytest.raises(ConfigError, match="SB_DEFAULT_LANGUAGE must be one of zh, en"):
        i18n.default_language(settings(SB_DEFAULT_LANGUAGE="fr"))
