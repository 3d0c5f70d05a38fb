"""What a customer reads or hears when a code is sent, in their language (shared/i18n.py).

A voice call reads the code digit by digit, twice; an SMS is one short paragraph; an
e-mail adds a subject and a line for whoever did not ask for the code.
"""

from __future__ import annotations

from shared.i18n import spell_digits, translate, translate_plural


def validity(code: str, lifetime: int, language: str) -> str:
    """The code and how long it lasts, in whole minutes (rounded down: never promised
    longer than it lives), or in seconds under a minute."""
    if lifetime >= 60:
        return translate_plural(
            "Your verification code is %(code)s. It expires in %(n)s minute. "
            "Never share it with anyone.",
            "Your verification code is %(code)s. It expires in %(n)s minutes. "
            "Never share it with anyone.",
            lifetime // 60,
            language,
            code=code,
        )
    return translate_plural(
        "Your verification code is %(code)s. It expires in %(n)s second. "
        "Never share it with anyone.",
        "Your verification code is %(code)s. It expires in %(n)s seconds. "
        "Never share it with anyone.",
        lifetime,
        language,
        code=code,
    )


def code_message(
    channel: str, code: str, lifetime: int, language: str
) -> tuple[str, dict[str, str]]:
    """(the text, what the provider needs besides: an e-mail's subject)."""
    if channel == "voice":
        digits = spell_digits(code, language)
        spoken = translate(
            "Your verification code is %(digits)s. Once again: %(digits)s.",
            language,
            digits=digits,
        )
        return spoken, {}
    text = validity(code, lifetime, language)
    if channel == "email":
        ignore = translate(
            "If you did not ask for this code, you can ignore this e-mail.", language
        )
        return f"{text}\n\n{ignore}", {"subject": translate("Your verification code", language)}
    return text, {}
