"""Who may find which profiles (API.md B, "No directory of customers for channels").

A channel (IVR, chat, web) finds a profile only by an exact, full identifier it
was given by the customer in front of it: ``?identifier=phone:+8613800138000``,
normalised as resolve normalises, at most one profile. Name search and listing
are for people at a desk (scope ``agent`` or ``admin``).
"""

from __future__ import annotations

import re
from typing import Any

from services.crm.common import UseCases, view
from services.crm.domain.errors import InvalidIdentifier
from services.crm.ports import ProfilesTx

LISTING_SCOPES = frozenset({"agent", "admin"})
# A "+" left unencoded in a query string arrives as a space: "phone: 8613800138000".
_DECODED_PLUS = re.compile(r"^ (?=\d)")


def may_list(scopes: frozenset[str] | set[str]) -> bool:
    return bool(LISTING_SCOPES & set(scopes))


def find_by_identifier(crm: UseCases, raw: str, *, tier: str | None) -> list[dict[str, Any]]:
    """The profile holding exactly this identifier (type:value), as a list of 0 or 1."""
    type_, sep, value = raw.partition(":")
    if not sep or not type_ or not value:
        raise InvalidIdentifier(
            "identifier is type:value, like phone:+8613800138000", field="identifier"
        )
    if type_ == "phone":
        value = _DECODED_PLUS.sub("+", value)
    try:
        wanted = crm.config.identifiers.normalise(type_, value)
    except InvalidIdentifier as error:
        raise InvalidIdentifier(str(error), field="identifier") from None

    def found(tx: ProfilesTx) -> list[dict[str, Any]]:
        rows = tx.search_profiles(
            name_prefix=None, identifiers=[wanted], tier=tier, after=None, limit=1
        )
        return [view(tx, r) for r in rows]

    return crm.read(found)
