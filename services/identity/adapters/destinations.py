"""The facts the delivery guard needs about a destination, from ``phonenumbers``.

Kept out of the domain: the domain sees a calling code, a line type, a prefix and a
keyed digest, never the address itself.
"""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from services.identity.domain.delivery_policy import PHONE_CHANNELS, Destination

_TYPES = {v: k.lower() for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()}


def digest(key: bytes, value: str) -> str:
    """A keyed digest (never the value in clear) that names a destination or customer."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def describe(key: bytes, channel: str, address: str, prefix_digits: int) -> Destination:
    """``address`` (a normalised E.164 number or e-mail address) as the guard sees it."""
    normalised = address.strip().lower() if channel not in PHONE_CHANNELS else address.strip()
    facts = Destination(channel=channel, digest=digest(key, normalised))
    if channel not in PHONE_CHANNELS:
        return facts
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return facts  # no country: refused by any list of countries
    national = phonenumbers.national_significant_number(number)
    code = str(number.country_code)
    return Destination(
        channel=channel,
        digest=facts.digest,
        country=code,
        line_type=_TYPES.get(phonenumbers.number_type(number), "unknown"),
        prefix=f"+{code}-{national[:prefix_digits]}",
    )


class KeyedDestinations:
    """``ports.Destinations``: destinations and customers under the guard's own key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def describe(self, channel: str, address: str, prefix_digits: int) -> Destination:
        return describe(self._key, channel, address, prefix_digits)

    def digest(self, value: str) -> str:
        return digest(self._key, value)
