"""Which language a customer reads a delivered code in (API.md A, "Languages").

The challenge's ``language``, else the one the verification was started with, else the
CRM profile's (identity's projection of ``crm.profile.*``), else ``SB_DEFAULT_LANGUAGE``:
the first of them that has a catalog (shared/i18n.py). The profile is read only when the
requests named no supported language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.i18n import choose, supported


def delivery_language(
    requested: tuple[Any, ...],
    profile: Callable[[], Mapping[str, str]],
    default: str,
) -> str:
    for tag in requested:
        language = supported(tag) if isinstance(tag, str) else None
        if language is not None:
            return language
    return choose(profile().get("language"), default=default)
