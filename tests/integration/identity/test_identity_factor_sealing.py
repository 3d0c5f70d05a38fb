"""Factor data at rest: sealed under IDENTITY_DATA_KEY, bound to its customer and factor,
readable across a key rotation, and factors stored before sealing keep working."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from services.identity.adapters.redis_store import ckey
from services.identity.app import create_app
from shared.config import Settings
from tests.integration.identity.conftest import Api
from tests.redis_scan import redis_text


def api_with(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]], **env: str
) -> Api:
    app = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000", **env))
    return Api(app.test_client(), headers)


def approved_by_totp(api: Api, cid: str, totp: pyotp.TOTP) -> bool:
    vid = api.start(cid).json["verification_id"]
    return api.check(vid, "totp", code=totp.now()).json.get("status") == "approved"


def test_no_copy_of_a_totp_secret_is_kept_in_clear(api: Api, redis: Any) -> None:
    _fid, totp = api.enroll_totp("c-seal-1")
    assert approved_by_totp(api, "c-seal-1", totp)
    assert totp.secret not in redis_text(redis)
    [stored] = redis.hvals(ckey("c-seal-1", "factors"))
    record = json.loads(stored)
    assert "data" not in record and record["sealed_data"]
    assert record["public"]["secret"] == "********" + totp.secret[-4:]


def test_a_rotated_key_still_opens_factors_sealed_under_the_old_one(
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-1")
    _fid, totp = old.enroll_totp("c-seal-2")

    rotated = api_with(
        make_settings,
        headers,
        IDENTITY_DATA_KEY="data-key-2",
        IDENTITY_DATA_KEY_PREVIOUS="data-key-0, data-key-1",
    )
    assert approved_by_totp(rotated, "c-seal-2", totp)

    # Without the old key the factor is unusable: the check fails and says so in the
    # log, it never answers 500.
    dropped = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-2")
    with caplog.at_level(logging.ERROR, logger="sb.identity.store"):
        listed = dropped.call("GET", "/v1/customers/c-seal-2/factors")
        assert listed.status_code == 200 and listed.json["items"] == []
        start = dropped.start("c-seal-2")
        assert start.status_code == 201, start.json
        check = dropped.check(start.json["verification_id"], "totp", code=totp.now())
        assert check.status_code < 500 and check.json.get("status") != "approved"
    assert "factor data does not open" in caplog.text


def test_a_sealed_record_copied_to_another_customer_does_not_open(api: Api, redis: Any) -> None:
    fid, totp = api.enroll_totp("c-seal-3")
    stored = redis.hget(ckey("c-seal-3", "factors"), fid)
    redis.hset(ckey("c-seal-4", "factors"), fid, stored)
    listed = api.call("GET", "/v1/customers/c-seal-4/factors")
    assert listed.status_code == 200 and listed.json["items"] == []
    assert not approved_by_totp(api, "c-seal-4", totp)
    assert approved_by_totp(api, "c-seal-3", totp)


def test_a_factor_stored_before_sealing_works_and_is_sealed_when_next_saved(
    api: Api, redis: Any
) -> None:
    secret = pyotp.random_base32()
    fid = "f-legacy-1"
    legacy = {
        "factor_id": fid,
        "type": "totp",
        "status": "pending",
        "created_at": time.time(),
        "data": {"secret": secret},
        "public": {"secret": "********" + secret[-4:]},
    }
    redis.hset(ckey("c-seal-5", "factors"), fid, json.dumps(legacy))
    totp = pyotp.TOTP(secret)
    confirmed = api.call(
        "POST",
        f"/v1/customers/c-seal-5/factors/{fid}/confirm",
        json={"code": totp.at(time.time() - 30)},
    )
    assert confirmed.status_code == 200, confirmed.json
    assert secret not in redis.hget(ckey("c-seal-5", "factors"), fid)
    assert approved_by_totp(api, "c-seal-5", totp)
