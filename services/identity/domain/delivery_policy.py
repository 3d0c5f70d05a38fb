"""The delivery fraud guard's rules: which destinations a code may be sent to, and how often.

Pure: the facts about a destination (its country calling code, line type, prefix and
keyed digest) are computed by an adapter (``adapters/destinations.py``); the counters
are kept by another (``adapters/delivery_guard_store.py``). Here are the policy value, its
validation, and the decisions taken from those facts and counters.

Terms:

- *country*: the E.164 country calling code of a number, as digits ("86", "44"). The
  international networks and satellite services have calling codes of their own ("881",
  "882", "883", "870", ...); they are listed in ``NON_GEOGRAPHIC`` and are never covered
  by ``"*"``: a policy names them to allow them (Twilio's geo permissions keep them
  apart from the countries too).
- *prefix*: "+", the calling code, a space and the first ``prefix_digits`` digits of the
  national significant number (``+44 70000``, ``+86 13800``): the block an operator
  or a fraud ring rents numbers in. E-mail destinations have no prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.identity.domain.errors import DeliveryPolicyInvalid

CHANNELS = ("sms", "voice", "email")
PHONE_CHANNELS = frozenset({"sms", "voice"})
#: phonenumbers' PhoneNumberType names, lower-cased
LINE_TYPES = (
    "fixed_line",
    "mobile",
    "fixed_line_or_mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "unknown",
)
#: calling codes of no country (region "001" in phonenumbers): global services,
#: international networks, satellite
NON_GEOGRAPHIC = frozenset({"800", "808", "870", "878", "881", "882", "883", "888", "979"})
ANY = "*"
HOUR = 3600


@dataclass(frozen=True)
class Limits:
    per_client_per_hour: int = 1000
    per_customer_per_hour: int = 10
    per_prefix_per_hour: int = 50


@dataclass(frozen=True)
class AutoBlock:
    """Block a prefix when, over ``window_seconds``, at least ``min_sends`` codes were sent
    to it and fewer than ``min_conversion`` of them were entered. Sends younger than
    ``grace_seconds`` are not judged yet (their customer may still be typing)."""

    min_sends: int = 30
    min_conversion: float = 0.2
    window_seconds: int = HOUR
    grace_seconds: int = 300
    block_seconds: int = HOUR
    enabled: bool = True


@dataclass(frozen=True)
class DeliveryPolicy:
    #: channel -> allowed calling codes; None allows any (but the non-geographic ones)
    allowed_countries: Mapping[str, tuple[str, ...] | None]
    max_destinations_per_customer: int = 3
    limits: Limits = field(default_factory=Limits)
    block_line_types: tuple[str, ...] = ("premium_rate", "shared_cost", "voip")
    auto_block: AutoBlock = field(default_factory=AutoBlock)
    prefix_digits: int = 5

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_countries": {
                c: ANY if v is None else list(v) for c, v in self.allowed_countries.items()
            },
            "max_destinations_per_customer": self.max_destinations_per_customer,
            "limits": {
                "per_client_per_hour": self.limits.per_client_per_hour,
                "per_customer_per_hour": self.limits.per_customer_per_hour,
                "per_prefix_per_hour": self.limits.per_prefix_per_hour,
            },
            "block_line_types": list(self.block_line_types),
            "auto_block": {
                "enabled": self.auto_block.enabled,
                "min_sends": self.auto_block.min_sends,
                "min_conversion": self.auto_block.min_conversion,
                "window_seconds": self.auto_block.window_seconds,
                "grace_seconds": self.auto_block.grace_seconds,
                "block_seconds": self.auto_block.block_seconds,
            },
            "prefix_digits": self.prefix_digits,
        }


DEFAULT_DELIVERY_POLICY = DeliveryPolicy(
    allowed_countries={"sms": ("86",), "voice": ("86",), "email": None}
)


# -- validation --------------------------------------------------------------------------------
def _int(
    errors: dict[str, list[str]], name: str, value: Any, low: int, high: int, default: int
) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.setdefault(name, []).append(f"Must be an integer from {low} to {high}.")
        return default
    return value


def _countries(errors: dict[str, list[str]], raw: Any) -> dict[str, tuple[str, ...] | None]:
    defaults = dict(DEFAULT_DELIVERY_POLICY.allowed_countries)
    if raw is None:
        return defaults
    if not isinstance(raw, Mapping):
        errors["allowed_countries"] = ['An object {"sms": [...], "voice": [...], "email": "*"}.']
        return defaults
    out = dict(defaults)
    for channel, value in raw.items():
        name = f"allowed_countries.{channel}"
        if channel not in CHANNELS:
            errors.setdefault(name, []).append(f"Unknown channel; one of {', '.join(CHANNELS)}.")
            continue
        if value == ANY:
            out[channel] = None
            continue
        if not isinstance(value, list) or len(value) > 300:
            errors.setdefault(name, []).append('"*" or a list of up to 300 calling codes.')
            continue
        bad = [v for v in value if not (isinstance(v, str) and v.isdigit() and 1 <= len(v) <= 3)]
        if bad:
            errors.setdefault(name, []).append(
                'Calling codes are 1 to 3 digits without "+", e.g. "86", "44", "882".'
            )
            continue
        if channel not in PHONE_CHANNELS and value:
            errors.setdefault(name, []).append('E-mail has no country: "*" or [] (none).')
            continue
        out[channel] = tuple(sorted(set(value)))
    return out


def parse_delivery_policy(data: Mapping[str, Any]) -> DeliveryPolicy:
    """The policy ``data`` describes (absent fields take the defaults); ``DeliveryPolicyInvalid``
    lists every field in error."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise DeliveryPolicyInvalid({"_schema": ["A JSON object."]})
    known = {
        "allowed_countries",
        "max_destinations_per_customer",
        "limits",
        "block_line_types",
        "auto_block",
        "prefix_digits",
    }
    for name in sorted(set(data) - known):
        errors[name] = ["Unknown field."]
    countries = _countries(errors, data.get("allowed_countries"))
    d = DEFAULT_DELIVERY_POLICY
    max_dest = _int(
        errors,
        "max_destinations_per_customer",
        data.get("max_destinations_per_customer"),
        1,
        100,
        d.max_destinations_per_customer,
    )
    raw_limits = data.get("limits") or {}
    if not isinstance(raw_limits, Mapping):
        errors["limits"] = ["An object of per_client_per_hour, per_customer_per_hour, ..."]
        raw_limits = {}
    for name in sorted(set(raw_limits) - set(d.limits.__dataclass_fields__)):
        errors[f"limits.{name}"] = ["Unknown limit."]
    limits = Limits(
        **{
            name: _int(
                errors,
                f"limits.{name}",
                raw_limits.get(name),
                1,
                1_000_000,
                getattr(d.limits, name),
            )
            for name in d.limits.__dataclass_fields__
        }
    )
    raw_types = data.get("block_line_types", list(d.block_line_types))
    if not isinstance(raw_types, list) or any(t not in LINE_TYPES for t in raw_types):
        errors["block_line_types"] = [f"A list of line types among {', '.join(LINE_TYPES)}."]
        raw_types = list(d.block_line_types)
    auto = _auto_block(errors, data.get("auto_block"))
    digits = _int(errors, "prefix_digits", data.get("prefix_digits"), 1, 8, d.prefix_digits)
    if errors:
        raise DeliveryPolicyInvalid(errors)
    return DeliveryPolicy(
        allowed_countries=countries,
        max_destinations_per_customer=max_dest,
        limits=limits,
        block_line_types=tuple(sorted(set(raw_types))),
        auto_block=auto,
        prefix_digits=digits,
    )


def _auto_block(errors: dict[str, list[str]], raw: Any) -> AutoBlock:
    d = AutoBlock()
    if raw is None:
        return d
    if not isinstance(raw, Mapping):
        errors["auto_block"] = ["An object of min_sends, min_conversion, window_seconds, ..."]
        return d
    for name in sorted(set(raw) - set(d.__dataclass_fields__)):
        errors[f"auto_block.{name}"] = ["Unknown field."]
    enabled = raw.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        errors["auto_block.enabled"] = ["A boolean."]
        enabled = d.enabled
    conversion = raw.get("min_conversion", d.min_conversion)
    if isinstance(conversion, bool) or not isinstance(conversion, int | float):
        conversion = -1
    if not 0 <= conversion <= 1:
        errors["auto_block.min_conversion"] = ["A share from 0 to 1."]
        conversion = d.min_conversion
    window = _int(
        errors, "auto_block.window_seconds", raw.get("window_seconds"), 60, 86400, d.window_seconds
    )
    grace = _int(
        errors, "auto_block.grace_seconds", raw.get("grace_seconds"), 0, 3600, d.grace_seconds
    )
    if grace >= window:
        errors.setdefault("auto_block.grace_seconds", []).append(
            "Must be shorter than window_seconds."
        )
    return AutoBlock(
        min_sends=_int(errors, "auto_block.min_sends", raw.get("min_sends"), 1, 100_000, 30),
        min_conversion=float(conversion),
        window_seconds=window,
        grace_seconds=grace,
        block_seconds=_int(
            errors, "auto_block.block_seconds", raw.get("block_seconds"), 1, 7 * 86400, HOUR
        ),
        enabled=enabled,
    )


# -- decisions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Destination:
    """What is known of where a code would go; never the address itself."""

    channel: str
    digest: str  # keyed digest of the normalised address
    country: str = ""  # calling code; "" for e-mail or an unparsable number
    line_type: str = "unknown"
    prefix: str = ""  # "" for e-mail

    @property
    def phone(self) -> bool:
        return self.channel in PHONE_CHANNELS


@dataclass(frozen=True)
class Refusal:
    """Why a send is refused: ``status`` 403 (not allowed) or 429 (too many, retry later)."""

    reason: str
    message: str
    status: int = 403
    retry_after: int | None = None


@dataclass(frozen=True)
class Usage:
    """The guard's counters as they were just before this send (read atomically)."""

    prefix_blocked_for: int = 0  # seconds left of a prefix block; 0 when none
    destinations: int = 0  # distinct destinations this customer was sent codes to
    known_destination: bool = False  # this one among them
    per_client: int = 0
    per_customer: int = 0
    per_prefix: int = 0
    window_left: int = HOUR  # seconds until the hourly counters start again


def screen(policy: DeliveryPolicy, dest: Destination) -> Refusal | None:
    """The refusals that need no counter: country and line type."""
    if dest.channel not in policy.allowed_countries:
        return None  # a channel the policy does not know (a plugin's): not guarded here
    allowed = policy.allowed_countries[dest.channel]
    if dest.phone:
        if allowed is None:
            permitted = dest.country != "" and dest.country not in NON_GEOGRAPHIC
        else:
            permitted = dest.country in allowed
        if not permitted:
            return Refusal(
                "country_not_allowed",
                f"codes are not sent by {dest.channel} to numbers of calling code "
                f"+{dest.country or '?'}",
            )
        if dest.line_type in policy.block_line_types:
            return Refusal("line_type_blocked", f"codes are not sent to {dest.line_type} numbers")
    elif allowed is not None and not allowed:
        return Refusal("channel_not_allowed", f"codes are not sent by {dest.channel}")
    return None


def caps(policy: DeliveryPolicy, dest: Destination) -> tuple[int, int, int, int]:
    """(destinations, per client, per customer, per prefix) a send must stay below; 0 is no
    cap (e-mail has no prefix)."""
    limits = policy.limits
    return (
        policy.max_destinations_per_customer,
        limits.per_client_per_hour,
        limits.per_customer_per_hour,
        limits.per_prefix_per_hour if dest.prefix else 0,
    )


def decide(policy: DeliveryPolicy, dest: Destination, usage: Usage) -> Refusal | None:
    """Allow (None) or refuse a send given the counters before it. The store admits a send
    (and counts it) exactly when this answers None: both refuse at ``count >= cap``."""
    if usage.prefix_blocked_for > 0:
        return Refusal(
            "prefix_blocked",
            "codes to this number range are suspended: too few of them were used",
            retry_after=usage.prefix_blocked_for,
        )
    max_dest, client, customer, prefix = caps(policy, dest)
    if not usage.known_destination and usage.destinations >= max_dest:
        return Refusal(
            "too_many_destinations",
            f"codes were sent to {max_dest} destinations of this customer already",
        )
    wait = max(1, usage.window_left)
    for count, cap, reason, text in (
        (usage.per_client, client, "client_rate", "this API client"),
        (usage.per_customer, customer, "customer_rate", "this customer"),
        (usage.per_prefix, prefix, "prefix_rate", "this number range"),
    ):
        if cap and count >= cap:
            return Refusal(reason, f"too many codes sent for {text} this hour", 429, wait)
    return None


def should_block(policy: DeliveryPolicy, sends: int, converted: int) -> bool:
    """Whether a prefix with ``sends`` judged sends, ``converted`` of them entered, is blocked."""
    rule = policy.auto_block
    return rule.enabled and sends >= rule.min_sends and converted < rule.min_conversion * sends


REFUSAL_REASONS = (
    "country_not_allowed",
    "line_type_blocked",
    "channel_not_allowed",
    "prefix_blocked",
    "too_many_destinations",
    "client_rate",
    "customer_rate",
    "prefix_rate",
)
