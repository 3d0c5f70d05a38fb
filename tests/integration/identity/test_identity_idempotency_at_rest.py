"""A TOTP enrollment with an Idempotency-Key leaves no copy of the secret; erasure forgets it."""

from __future__ import annotations

from typing import Any

from tests.integration.identity.conftest import Api
from tests.integration.identity.test_identity_consumer import drain, publish
from tests.redis_scan import redis_text


def enroll(api: Api, cid: str, idem_key: str) -> Any:
    return api.c.post(
        f"/v1/customers/{cid}/factors",
        json={"type": "totp"},
        headers={**api.h("channel"), "Idempotency-Key": idem_key},
    )


def test_a_replayed_totp_enrollment_keeps_no_secret_in_redis(api: Api, redis: Any) -> None:
    first = enroll(api, "c-idem-1", "enroll-1")
    assert first.status_code == 201, first.json
    secret = first.json["secret"]
    # The factor record seals it too (test_identity_factor_sealing): no copy anywhere.
    assert secret and secret not in redis_text(redis)
    again = enroll(api, "c-idem-1", "enroll-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert secret not in redis_text(redis)


def test_erasure_forgets_the_stored_enrollment(api: Api, redis: Any) -> None:
    first = enroll(api, "c-idem-2", "enroll-2")
    assert first.status_code == 201, first.json
    assert redis.exists("sb:idem:subject:c-idem-2")
    publish(redis, "crm.profile.erased", profile_id="c-idem-2")
    drain(redis)
    assert not list(redis.scan_iter("sb:idem:*"))
    # Nothing is replayed any more: the same key starts a new enrollment.
    again = enroll(api, "c-idem-2", "enroll-2")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json["factor_id"] != first.json["factor_id"]
