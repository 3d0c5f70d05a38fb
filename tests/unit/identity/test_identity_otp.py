from __future__ import annotations

import base64

import pytest

from services.identity.adapters.pyotp_totp import PyotpCodes
from services.identity.domain.otp import (
    CodeCheck,
    check_code,
    decode_base32,
    issue_code,
    new_base32_secret,
    otpauth_uri,
    totp_step,
)

RFC_SEED = b"12345678901234567890"
SECRET = base64.b32encode(RFC_SEED).decode()  # the RFC seeds as an authenticator app holds them
SEEDS = {
    "sha1": RFC_SEED,
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890" * 6 + b"1234",
}


@pytest.mark.parametrize(
    ("counter", "code"),
    list(
        enumerate(
            [
                "755224",
                "287082",
                "359152",
                "969429",
                "338314",
                "254676",
                "287922",
                "162583",
                "399871",
                "520489",
            ]
        )
    ),
)
def test_hotp_matches_rfc4226_appendix_d(counter: int, code: str) -> None:
    # A TOTP code is the HOTP of the step counter: the RFC 4226 vectors check pyotp's.
    assert PyotpCodes().code(SECRET, counter) == code


@pytest.mark.parametrize(
    ("unix_time", "sha1", "sha256", "sha512"),
    [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ],
)
def test_totp_matches_rfc6238_appendix_b(unix_time: int, sha1: str, sha256: str, sha512: str):
    for digest, code in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        codes = PyotpCodes(digits=8, digest=digest)
        secret = base64.b32encode(SEEDS[digest]).decode()
        assert codes.code(secret, totp_step(unix_time)) == code
        assert codes.match(secret, code, unix_time) == totp_step(unix_time)


def test_a_totp_code_matches_its_own_step_and_one_step_either_side() -> None:
    now, codes = 1_700_000_000, PyotpCodes()
    code = codes.code(SECRET, now // 30)
    assert codes.match(SECRET, code, now) == now // 30
    assert codes.match(SECRET, code, now + 30) == now // 30
    assert codes.match(SECRET, code, now - 30) == now // 30
    assert codes.match(SECRET, code, now + 60) is None


def test_a_step_already_accepted_is_never_matched_again() -> None:
    now, codes = 1_700_000_000, PyotpCodes()
    code = codes.code(SECRET, now // 30)
    assert codes.match(SECRET, code, now, after_step=now // 30) is None
    assert codes.match(SECRET, code, now, after_step=now // 30 - 1) == now // 30


@pytest.mark.parametrize("junk", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"])
def test_malformed_codes_never_match(junk: str) -> None:
    assert PyotpCodes().match(SECRET, junk, 1_700_000_000) is None


def test_generated_secrets_are_160_bits_of_base32() -> None:
    secret = new_base32_secret()
    assert len(decode_base32(secret)) == 20
    assert new_base32_secret() != secret


def test_the_otpauth_uri_follows_the_key_uri_format() -> None:
    uri = otpauth_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "c-1", "Switch board")
    assert uri.startswith("otpauth://totp/Switch%20board%3Ac-1?secret=JBSWY3DPEHPK3PXP")
    assert "issuer=Switch%20board" in uri and "period=30" in uri and "digits=6" in uri


KEY = b"k" * 32


def test_an_issued_code_is_six_digits_and_only_its_hash_is_kept() -> None:
    code, record = issue_code(KEY, "v-1", "sms_otp", now=1000.0)
    assert len(code) == 6 and code.isdigit()
    assert code not in repr(record)
    assert record.expires_at == 1300.0


def test_a_code_checks_ok_until_it_expires() -> None:
    code, record = issue_code(KEY, "v-1", "sms_otp", now=1000.0, lifetime=60)
    assert check_code(KEY, record, "v-1", "sms_otp", code, now=1059.9) is CodeCheck.OK
    assert check_code(KEY, record, "v-1", "sms_otp", code, now=1060.0) is CodeCheck.EXPIRED


def test_a_code_is_bound_to_the_verification_and_factor_that_issued_it() -> None:
    code, record = issue_code(KEY, "v-1", "sms_otp", now=1000.0)
    assert check_code(KEY, record, "v-2", "sms_otp", code, now=1001) is CodeCheck.WRONG
    assert check_code(KEY, record, "v-1", "email_otp", code, now=1001) is CodeCheck.WRONG
    wrong = str((int(code) + 1) % 10**6).zfill(6)
    assert check_code(KEY, record, "v-1", "sms_otp", wrong, now=1001) is CodeCheck.WRONG


@pytest.mark.parametrize("lifetime", [0, 601])
def test_code_lifetimes_stay_within_ten_minutes(lifetime: int) -> None:
    with pytest.raises(ValueError):
        issue_code(KEY, "v-1", "sms_otp", now=0, lifetime=lifetime)
