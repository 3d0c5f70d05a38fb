"""Factor data at rest: sealed under IDENTITY_DATA_KEY, bound to its customer and factor,
readable across a key rotation, and factors stored before sealing keep working. A factor
read in clear or under an older key is sealed again under the current one, by the read or
by ``python -m services.identity.reseal``, so an old key can be dropped."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import redis as redis_lib
from redis.cluster import RedisCluster

from services.identity.adapters.redis.keys import ckey, shard_of
from services.identity.adapters.redis.store import RedisStore
from services.identity.app import create_app
from services.identity.bootstrap import factor_sealer
from shared.config import Settings
from shared.testing import ROOT, RedisClusterServers, RedisServer
from tests.integration.identity.conftest import Api
from tests.redis_scan import redis_text


def api_with(
    make_settings: Callable[..., Settings], headers: Callable[[str], dict[str, str]], **env: str
) -> Api:
    app = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000", **env))
    return Api(app.test_client(), headers)


def approved_by_totp(api: Api, cid: str, totp: pyotp.TOTP, steps_ahead: int = 0) -> bool:
    """``steps_ahead``: a later code than the one accepted last (each step is accepted
    once; the server accepts the next step as well)."""
    vid = api.start(cid).json["verification_id"]
    code = totp.at(time.time() + 30 * steps_ahead)
    return api.check(vid, "totp", code=code).json.get("status") == "approved"


def store_with(make_settings: Callable[..., Settings], redis: Any, **env: str) -> RedisStore:
    """The store as the service builds it, sealing as ``env`` says."""
    return RedisStore(redis, sealer=factor_sealer(make_settings("identity", **env)))


def kid(make_settings: Callable[..., Settings], data_key: str) -> str:
    """The key id that values sealed under ``data_key`` carry."""
    sealer = factor_sealer(make_settings("identity", IDENTITY_DATA_KEY=data_key))
    return sealer.seal(b"", b"").partition(".")[0]


def totp_record(fid: str, secret: str) -> dict[str, Any]:
    """A confirmed TOTP factor as the service keeps it (before sealing: as it was stored)."""
    return {
        "factor_id": fid,
        "type": "totp",
        "status": "active",
        "created_at": time.time(),
        "data": {"secret": secret},
        "public": {"secret": "********" + secret[-4:]},
    }


def stored(redis: Any, cid: str, fid: str) -> dict[str, Any]:
    return json.loads(redis.hget(ckey(cid, "factors"), fid))


def test_no_copy_of_a_totp_secret_is_kept_in_clear(api: Api, redis: Any) -> None:
    _fid, totp = api.enroll_totp("c-seal-1")
    assert approved_by_totp(api, "c-seal-1", totp)
    assert totp.secret not in redis_text(redis)
    [stored] = redis.hvals(ckey("c-seal-1", "factors"))
    record = json.loads(stored)
    assert "data" not in record and record["sealed_data"]
    assert record["public"]["secret"] == "********" + totp.secret[-4:]


def test_a_rotated_key_opens_factors_sealed_under_the_old_one_and_reseals_them(
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
    redis: Any,
) -> None:
    old = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-1")
    fid, totp = old.enroll_totp("c-seal-2")
    assert stored(redis, "c-seal-2", fid)["sealed_data"].startswith(
        kid(make_settings, "data-key-1") + "."
    )

    rotated = api_with(
        make_settings,
        headers,
        IDENTITY_DATA_KEY="data-key-2",
        IDENTITY_DATA_KEY_PREVIOUS="data-key-0, data-key-1",
    )
    assert approved_by_totp(rotated, "c-seal-2", totp)
    # The confirmed factor was only read, never saved: the read sealed it anew.
    assert stored(redis, "c-seal-2", fid)["sealed_data"].startswith(
        kid(make_settings, "data-key-2") + "."
    )

    # So the old key can go: the new one alone opens the factor.
    dropped = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-2")
    listed = dropped.call("GET", "/v1/customers/c-seal-2/factors")
    assert [f["factor_id"] for f in listed.json["items"]] == [fid]
    assert approved_by_totp(dropped, "c-seal-2", totp, steps_ahead=1)


def test_a_key_dropped_before_its_factors_were_resealed_leaves_them_unusable_not_failing(
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-1")
    _fid, totp = old.enroll_totp("c-seal-6")

    # Without the old key the factor is unusable: the check fails and says so in the
    # log, it never answers 500.
    dropped = api_with(make_settings, headers, IDENTITY_DATA_KEY="data-key-2")
    with caplog.at_level(logging.ERROR, logger="sb.identity.store"):
        listed = dropped.call("GET", "/v1/customers/c-seal-6/factors")
        assert listed.status_code == 200 and listed.json["items"] == []
        start = dropped.start("c-seal-6")
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
    legacy = {**totp_record(fid, secret), "status": "pending"}
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


def test_a_confirmed_factor_stored_in_clear_is_sealed_by_the_first_read(
    api: Api, redis: Any, make_settings: Callable[..., Settings]
) -> None:
    secret = pyotp.random_base32()
    fid = "f-legacy-2"
    redis.hset(ckey("c-seal-7", "factors"), fid, json.dumps(totp_record(fid, secret)))
    totp = pyotp.TOTP(secret)

    assert approved_by_totp(api, "c-seal-7", totp)

    record = stored(redis, "c-seal-7", fid)
    assert "data" not in record and secret not in json.dumps(record)
    current = factor_sealer(make_settings("identity")).seal(b"", b"").partition(".")[0]
    assert record["sealed_data"].startswith(current + ".")
    assert secret not in redis_text(redis)
    assert approved_by_totp(api, "c-seal-7", totp, steps_ahead=1)


READS: dict[str, Callable[[RedisStore, str, str], Any]] = {
    "factor": lambda store, cid, fid: store.factor(cid, fid)["data"],
    "factors": lambda store, cid, fid: store.factors(cid)[0]["data"],
    "snapshot": lambda store, cid, fid: store.snapshot(cid).factors[0]["data"],
}


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("stored_as", ["in clear", "under an old key"])
def test_every_read_of_factors_reseals_them_under_the_current_key(
    read: str, stored_as: str, make_settings: Callable[..., Settings], redis: Any
) -> None:
    cid, fid, secret = "c-seal-8", "f-1", pyotp.random_base32()
    if stored_as == "in clear":
        redis.hset(ckey(cid, "factors"), fid, json.dumps(totp_record(fid, secret)))
    else:
        old = store_with(make_settings, redis, IDENTITY_DATA_KEY="data-key-1")
        old.save_factor(cid, totp_record(fid, secret), [])
    before = redis.hget(ckey(cid, "factors"), fid)
    rotated = store_with(
        make_settings,
        redis,
        IDENTITY_DATA_KEY="data-key-2",
        IDENTITY_DATA_KEY_PREVIOUS="data-key-1",
    )

    assert READS[read](rotated, cid, fid) == {"secret": secret}

    after = redis.hget(ckey(cid, "factors"), fid)
    assert after != before and secret not in after
    assert json.loads(after)["sealed_data"].startswith(kid(make_settings, "data-key-2") + ".")
    only_new = store_with(make_settings, redis, IDENTITY_DATA_KEY="data-key-2")
    assert only_new.factor(cid, fid)["data"] == {"secret": secret}
    # Sealed under the current key already: a read writes nothing.
    assert READS[read](rotated, cid, fid) == {"secret": secret}
    assert redis.hget(ckey(cid, "factors"), fid) == after


def test_a_write_back_never_resurrects_a_deleted_factor_nor_undoes_a_newer_save(
    make_settings: Callable[..., Settings], redis: Any
) -> None:
    cid, key = "c-seal-9", ckey("c-seal-9", "factors")
    store = store_with(make_settings, redis, IDENTITY_DATA_KEY="data-key-2")
    redis.hset(key, "f-1", json.dumps(totp_record("f-1", pyotp.random_base32())))
    redis.hset(key, "f-2", json.dumps(totp_record("f-2", pyotp.random_base32())))
    read = redis.hgetall(key)
    stale = {fid: (raw, store.sealed_factor(cid, json.loads(raw))) for fid, raw in read.items()}

    # Between the read and its write-back: f-1 is removed, f-2 saved anew.
    store.delete_factor(cid, "f-1", [])
    newer = totp_record("f-2", pyotp.random_base32())
    store.save_factor(cid, newer, [])
    saved = redis.hget(key, "f-2")

    assert store.write_back_factors(cid, stale) == 0
    assert redis.hkeys(key) == ["f-2"] and redis.hget(key, "f-2") == saved
    assert store.factor(cid, "f-2")["data"] == newer["data"]

    # Unchanged since the read, the same write-back goes through.
    redis.hset(key, "f-1", read["f-1"])
    assert store.write_back_factors(cid, {"f-1": stale["f-1"]}) == 1
    assert redis.hget(key, "f-1") == stale["f-1"][1]


@pytest.fixture
def replica(redis_server: RedisServer, tmp_path: Path) -> Iterator[redis_lib.Redis]:
    """A read-only replica of the test Redis, in sync."""
    server = RedisServer(
        tmp_path / "replica", extra_args=("--replicaof", "127.0.0.1", str(redis_server.port))
    )
    client = redis_lib.Redis(port=server.port, decode_responses=True)
    try:
        deadline = time.monotonic() + 60
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        server.stop()


def test_a_read_whose_write_back_fails_still_returns_the_factor_and_only_warns(
    make_settings: Callable[..., Settings],
    redis: Any,
    replica: redis_lib.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cid, fid, secret = "c-seal-10", "f-1", pyotp.random_base32()
    redis.hset(ckey(cid, "factors"), fid, json.dumps(totp_record(fid, secret)))
    deadline = time.monotonic() + 60
    while not replica.hexists(ckey(cid, "factors"), fid):
        assert time.monotonic() < deadline, "the factor did not reach the replica"
        time.sleep(0.02)
    on_replica = store_with(make_settings, replica, IDENTITY_DATA_KEY="data-key-2")

    with caplog.at_level(logging.WARNING, logger="sb.identity.store"):
        assert on_replica.factor(cid, fid)["data"] == {"secret": secret}
        assert on_replica.factors(cid)[0]["data"] == {"secret": secret}
    assert "factor data not re-sealed" in caplog.text
    assert secret not in caplog.text
    # Redis 7 answers READONLY; 6.2 wraps it in a script error.
    assert [r.error in {"ReadOnlyError", "ResponseError"} for r in caplog.records] == [True, True]
    assert secret in redis.hget(ckey(cid, "factors"), fid)  # still as it was


def run_reseal(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.identity.reseal"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_reseal_command_seals_every_customers_factors_under_the_current_key(
    make_settings: Callable[..., Settings], base_env: dict[str, str], redis: Any
) -> None:
    secrets = {f"c-scan-{n}": pyotp.random_base32() for n in range(6)}
    clear, old_key, current, lost = (
        ["c-scan-0", "c-scan-1"],
        ["c-scan-2", "c-scan-3"],
        ["c-scan-4"],
        ["c-scan-5"],
    )
    assert len({shard_of(cid) for cid in secrets}) > 1  # several hash tags
    for cid in clear:
        redis.hset(ckey(cid, "factors"), "f-1", json.dumps(totp_record("f-1", secrets[cid])))
    for cids, data_key in ((old_key, "data-key-1"), (current, "data-key-2"), (lost, "data-key-0")):
        sealing = store_with(make_settings, redis, IDENTITY_DATA_KEY=data_key)
        for cid in cids:
            sealing.save_factor(cid, totp_record("f-1", secrets[cid]), [])
    # A second factor for one customer, and keys the scan must pass over.
    store_with(make_settings, redis, IDENTITY_DATA_KEY="data-key-1").save_factor(
        "c-scan-2", totp_record("f-2", pyotp.random_base32()), []
    )
    redis.hset(ckey("c-scan-2", "devices"), "d-1", "{}")
    redis.set("idn:{idn-01}:c:not-a-hash:factors", "x")
    untouched = {cid: redis.hgetall(ckey(cid, "factors")) for cid in current + lost}

    env = {
        **base_env,
        "IDENTITY_DATA_KEY": "data-key-2",
        "IDENTITY_DATA_KEY_PREVIOUS": "data-key-1",
    }
    first = run_reseal(env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "identity factors: 7 scanned in 6 customers, 5 resealed, 1 unopenable, 0 changed meanwhile"
    )

    text = redis_text(redis)
    assert not any(secret in text for secret in secrets.values())
    new_kid = kid(make_settings, "data-key-2")
    for cid in clear + old_key:
        for raw in redis.hvals(ckey(cid, "factors")):
            assert json.loads(raw)["sealed_data"].startswith(new_kid + ".")
    assert {cid: redis.hgetall(ckey(cid, "factors")) for cid in current + lost} == untouched
    only_new = store_with(make_settings, redis, IDENTITY_DATA_KEY="data-key-2")
    for cid in clear + old_key + current:
        assert only_new.factor(cid, "f-1")["data"] == {"secret": secrets[cid]}

    again = run_reseal(env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        "identity factors: 7 scanned in 6 customers, 0 resealed, 1 unopenable, 0 changed meanwhile"
    )


def test_the_reseal_scan_reaches_every_node_of_a_cluster(
    make_settings: Callable[..., Settings], cluster_servers: RedisClusterServers
) -> None:
    cluster = RedisCluster.from_url(cluster_servers.url, decode_responses=True)
    try:
        cids = [f"c-cl-{n}" for n in range(24)]
        nodes = {cluster.get_node_from_key(ckey(cid, "factors")).name for cid in cids}
        assert len(nodes) == 3
        old = store_with(make_settings, cluster, IDENTITY_DATA_KEY="data-key-1")
        for cid in cids:
            old.save_factor(cid, totp_record("f-1", pyotp.random_base32()), [])
        rotated = store_with(
            make_settings,
            cluster,
            IDENTITY_DATA_KEY="data-key-2",
            IDENTITY_DATA_KEY_PREVIOUS="data-key-1",
        )

        counts = rotated.reseal_all(batch=5)

        assert (counts.customers, counts.scanned, counts.resealed) == (24, 24, 24)
        only_new = store_with(make_settings, cluster, IDENTITY_DATA_KEY="data-key-2")
        assert all(only_new.factor(cid, "f-1") is not None for cid in cids)
    finally:
        cluster.close()
