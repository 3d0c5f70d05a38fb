from __future__ import annotations

from typing import Any

import pytest

from services.identity.domain.fingerprint import (
    fingerprint,
    is_authenticator,
    normalise,
    normalise_ani,
    parse_user_agent,
    same_device,
    similarity,
)

KEY = b"server-key"
CHROME_120 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36"
)
BROWSER: dict[str, Any] = {
    "user_agent": CHROME_120,
    "platform": "Win32",
    "screen": "1920x1080",
    "timezone": "Europe/Berlin",
    "languages": ["de-DE", "en"],
    "hardware_concurrency": 8,
    "ip": "203.0.113.17",
}
APP: dict[str, Any] = {
    "app_install_id": "inst-1",
    "model": "Pixel 8",
    "os": "Android 14.1",
    "ip": "198.51.100.4",
}
VOICE: dict[str, Any] = {
    "ani": "+86 138 0013 8000",
    "carrier": "China Mobile",
    "line_type": "mobile",
}


def changed(base: dict[str, Any], **diff: Any) -> dict[str, Any]:
    return {**base, **diff}


NEAR = [
    (
        "chrome patch update",
        BROWSER,
        changed(BROWSER, user_agent=CHROME_120.replace("120.0.6099.109", "120.0.6099.200")),
    ),
    (
        "chrome major update",
        BROWSER,
        changed(BROWSER, user_agent=CHROME_120.replace("Chrome/120", "Chrome/121")),
    ),
    ("ip inside the same /24", BROWSER, changed(BROWSER, ip="203.0.113.200")),
    ("ip elsewhere but all else equal", BROWSER, changed(BROWSER, ip="192.0.2.1")),
    ("language list spelled in other case", BROWSER, changed(BROWSER, languages=["DE-de", "EN"])),
    ("app os minor update", APP, changed(APP, os="Android 14.2")),
    ("app on another network", APP, changed(APP, ip="192.0.2.9")),
    ("voice number formatted differently", VOICE, changed(VOICE, ani="+8613800138000")),
]
FAR = [
    ("platform change", BROWSER, changed(BROWSER, platform="MacIntel")),
    (
        "browser family change",
        BROWSER,
        changed(
            BROWSER,
            user_agent=("Mozilla/5.0 (Windows NT 10.0; rv:121.0) Gecko/20100101 Firefox/121.0"),
        ),
    ),
    (
        "screen, timezone and ip all changed",
        BROWSER,
        changed(BROWSER, screen="1280x720", timezone="Asia/Tokyo", ip="192.0.2.1"),
    ),
    ("install id change", APP, changed(APP, app_install_id="inst-2")),
    ("another calling number", VOICE, changed(VOICE, ani="+8613800138001")),
    ("browser versus app", BROWSER, APP),
]


@pytest.mark.parametrize(("case", "a", "b"), NEAR, ids=[c[0] for c in NEAR])
def test_near_pairs_are_the_same_device(case: str, a: dict, b: dict) -> None:
    assert same_device(normalise(a), normalise(b)), case


@pytest.mark.parametrize(("case", "a", "b"), FAR, ids=[c[0] for c in FAR])
def test_far_pairs_are_different_devices(case: str, a: dict, b: dict) -> None:
    assert not same_device(normalise(a), normalise(b)), case


def test_the_fingerprint_survives_a_version_bump_and_an_ip_change() -> None:
    bumped = changed(
        BROWSER, user_agent=CHROME_120.replace("Chrome/120", "Chrome/121"), ip="192.0.2.1"
    )
    assert fingerprint(KEY, normalise(BROWSER)) == fingerprint(KEY, normalise(bumped))


def test_the_fingerprint_is_keyed_and_changes_with_stable_components() -> None:
    comps = normalise(BROWSER)
    assert fingerprint(KEY, comps) != fingerprint(b"other-key", comps)
    assert fingerprint(KEY, comps) != fingerprint(KEY, normalise(changed(BROWSER, screen="1x1")))
    assert len(fingerprint(KEY, comps)) == 64


@pytest.mark.parametrize(
    ("ua", "family", "major"),
    [
        (CHROME_120, "chrome", "120"),
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit Chrome/120.0 Safari/537.36 Edg/120.0.2210",
            "edge",
            "120",
        ),
        (
            "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Version/17.1 Safari/605.1.15",
            "safari",
            "17",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "firefox",
            "121",
        ),
        ("curl/8.0", "other", ""),
    ],
)
def test_user_agents_reduce_to_family_and_major_version(ua: str, family: str, major: str):
    assert parse_user_agent(ua) == (family, major)


def test_ani_is_normalised_to_e164() -> None:
    assert normalise_ani("+86 138-0013-8000") == "+8613800138000"
    assert normalise(VOICE)["ani"] == "+8613800138000"


def test_a_voice_line_is_never_an_authenticator() -> None:
    assert not is_authenticator(normalise(VOICE))
    assert is_authenticator(normalise(BROWSER)) and is_authenticator(normalise(APP))


def test_a_signal_the_known_device_never_sent_says_nothing() -> None:
    partial = {k: v for k, v in BROWSER.items() if k != "screen"}
    assert similarity(normalise(partial), normalise(BROWSER)) == 1.0


def test_a_signal_left_out_counts_against_the_device_presented() -> None:
    # One signal missing (a browser that hides its screen) is still the same device...
    partial = {k: v for k, v in BROWSER.items() if k != "screen"}
    assert similarity(normalise(BROWSER), normalise(partial)) < 1.0
    assert same_device(normalise(BROWSER), normalise(partial))
    # ...but sending only what identifies the kind of browser matches no trusted one.
    bare = {"user_agent": CHROME_120, "platform": "Win32"}
    assert not same_device(normalise(BROWSER), normalise(bare))
    assert not same_device(normalise(APP), normalise({"app_install_id": "inst-1"}))
