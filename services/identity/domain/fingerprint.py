"""Device fingerprints: per-channel normalisation, a keyed hash, fuzzy matching.

The fingerprint is HMAC-SHA256(server key, canonical *stable* components), so a
browser version bump or a new IP address keeps it; the soft components
(browser major version, IP /24) are kept beside it and weigh in ``similarity``.
Identity components (browser family, platform, app install id, ANI) must be
equal for two devices to be the same one.

ANI (the calling number) is spoofable: it identifies a voice device for risk
scoring, and ``is_authenticator`` says a voice-only fingerprint never counts
as a trusted device.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

_UA_RULES = (  # order matters: Edge and Opera also say "Chrome", Chrome also says "Safari"
    ("edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("opera", re.compile(r"OPR/(\d+)")),
    ("samsung", re.compile(r"SamsungBrowser/(\d+)")),
    ("firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("safari", re.compile(r"Version/(\d+).*Safari/")),
)
_PLATFORM_HINTS = (
    ("android", "android"),
    ("iphone", "ios"),
    ("ipad", "ios"),
    ("mac os x", "macos"),
    ("macintosh", "macos"),
    ("windows", "windows"),
    ("cros", "chromeos"),
    ("linux", "linux"),
)

# name -> (weight, identity component?, stable component?)
COMPONENTS: dict[str, dict[str, tuple[float, bool, bool]]] = {
    "browser": {
        "ua_family": (3.0, True, True),
        "platform": (3.0, True, True),
        "ua_major": (1.0, False, False),
        "screen": (2.0, False, True),
        "timezone": (2.0, False, True),
        "languages": (1.5, False, True),
        "hardware_concurrency": (1.0, False, True),
        "ip_prefix": (1.0, False, False),
    },
    "app": {
        "install_id": (5.0, True, True),
        "model": (2.0, False, True),
        "os": (1.0, False, True),
        "os_major": (0.5, False, False),
        "ip_prefix": (0.5, False, False),
    },
    "voice": {
        "ani": (5.0, True, True),
        "carrier": (1.0, False, True),
        "line_type": (1.0, False, True),
    },
}
SAME_DEVICE_THRESHOLD = 0.8


def parse_user_agent(ua: str) -> tuple[str, str]:
    for family, pattern in _UA_RULES:
        found = pattern.search(ua)
        if found:
            return family, found.group(1)
    return ("other", "")


def _platform(raw: str, ua: str) -> str:
    text = (raw or ua).lower()
    for hint, name in _PLATFORM_HINTS:
        if hint in text:
            return name
    return re.sub(r"\s+", " ", text.strip())[:40]


def ip_prefix(ip: str) -> str:
    """The /24 of an IPv4 address (the /48 of an IPv6 one); '' when not an address."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def normalise_ani(ani: str) -> str:
    """E.164 when parseable (it must carry its +country code), digits otherwise."""
    try:
        number = phonenumbers.parse(ani, None)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = re.sub(r"\D", "", ani)
    return ("+" + digits) if digits else ""


def channel_kind(device: Mapping[str, Any]) -> str:
    if device.get("app_install_id"):
        return "app"
    if device.get("ani") and not device.get("user_agent"):
        return "voice"
    return "browser"


def _text(value: Any, limit: int = 64) -> str:
    return re.sub(r"\s+", " ", str(value or "").strip().lower())[:limit]


def normalise(device: Mapping[str, Any]) -> dict[str, str]:
    """The components of a device, by channel kind; empty values are left out."""
    kind = channel_kind(device)
    out: dict[str, str] = {"kind": kind}
    if kind == "browser":
        ua = str(device.get("user_agent") or "")
        family, major = parse_user_agent(ua)
        languages = device.get("languages") or []
        if isinstance(languages, str):
            languages = languages.split(",")
        out.update(
            ua_family=family,
            ua_major=major,
            platform=_platform(str(device.get("platform") or ""), ua),
            screen=_text(device.get("screen"), 20),
            timezone=_text(device.get("timezone"), 40),
            languages=",".join(_text(lang, 12) for lang in languages if _text(lang))[:80],
            hardware_concurrency=_text(device.get("hardware_concurrency"), 4),
            ip_prefix=ip_prefix(str(device.get("ip") or "")),
        )
    elif kind == "app":
        os_text = _text(device.get("os"), 40)
        os_name, _, os_version = os_text.partition(" ")
        out.update(
            install_id=_text(device.get("app_install_id"), 128),
            model=_text(device.get("model"), 40),
            os=os_name,
            os_major=os_version.split(".")[0],
            ip_prefix=ip_prefix(str(device.get("ip") or "")),
        )
    else:
        out.update(
            ani=normalise_ani(str(device.get("ani") or "")),
            carrier=_text(device.get("carrier"), 40),
            line_type=_text(device.get("line_type"), 20),
        )
    return {k: v for k, v in out.items() if v}


def fingerprint(key: bytes, components: Mapping[str, str]) -> str:
    kind = components.get("kind", "browser")
    stable = [
        f"{name}={components.get(name, '')}"
        for name, (_w, _i, is_stable) in sorted(COMPONENTS[kind].items())
        if is_stable
    ]
    canonical = "\n".join([f"kind={kind}", *stable]).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def similarity(known: Mapping[str, str], seen: Mapping[str, str]) -> float:
    """Weighted share of the ``known`` device's components that ``seen`` matches; 0 when
    an identity component differs. A signal the known device never sent says nothing,
    but one it sent and ``seen`` leaves out counts as a mismatch: otherwise a caller
    sending only a browser family and platform would match every such trusted device."""
    if known.get("kind") != seen.get("kind"):
        return 0.0
    total = matched = 0.0
    for name, (weight, identity, _stable) in COMPONENTS[known.get("kind", "browser")].items():
        left, right = known.get(name), seen.get(name)
        if left is None:
            continue
        if identity and left != right:
            return 0.0
        total += weight
        if left == right:
            matched += weight
        elif right is not None and name in ("ua_major", "os_major"):
            if _close_versions(left, right):
                matched += weight * 0.75
    return matched / total if total else 0.0


def _close_versions(left: str, right: str) -> bool:
    try:
        return abs(int(left) - int(right)) <= 2
    except ValueError:
        return False


def same_device(known: Mapping[str, str], seen: Mapping[str, str]) -> bool:
    return similarity(known, seen) >= SAME_DEVICE_THRESHOLD


def is_authenticator(components: Mapping[str, str]) -> bool:
    """A voice line (ANI) is a risk signal only: it never authenticates."""
    return components.get("kind") != "voice"


@dataclass(frozen=True)
class DeviceView:
    fingerprint: str
    components: dict[str, str]
