"""The key layout that keeps identity's scripts and transactions in one cluster slot."""

from __future__ import annotations

from redis.crc import key_slot

from services.identity.adapters.redis.keys import (
    OUTBOXES,
    SHARDS,
    ckey,
    erased_key,
    outbox,
    shard_of,
    shard_of_id,
    skey,
    stats_keys,
    totp_key,
    vkey,
)
from services.identity.adapters.redis.store import RedisStore


class NoRedis:
    def register_script(self, _script: str) -> None:
        return None


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_ids_made_for_a_customer_carry_the_customers_shard() -> None:
    store = RedisStore(NoRedis())
    for cid in ("c-1", "c-2", "profile-7f3a", "李伟"):
        for prefix in ("v", "s", "f"):
            oid = store.new_id(prefix, cid)
            assert oid.startswith(f"{prefix}-") and len(oid) == len(prefix) + 33
            assert shard_of_id(oid) == shard_of(cid)


def test_everything_of_one_customer_is_in_one_slot() -> None:
    store = RedisStore(NoRedis())
    cid = "c-42"
    vid, sid, fid = (store.new_id(p, cid) for p in ("v", "s", "f"))
    keys = [
        ckey(cid, n) for n in ("profile", "factors", "sessions", "vers", "fail", "lock", "streak")
    ]
    keys += [vkey(vid), vkey(vid) + ":sat", f"{vkey(vid)}:code:sms_otp", skey(sid), totp_key(fid)]
    keys += [*stats_keys(shard_of(cid)), outbox(shard_of(cid)), erased_key(cid)]
    assert len({slot(k) for k in keys}) == 1


def test_the_erasure_tombstone_does_not_name_the_customer() -> None:
    assert "c-42" not in erased_key("c-42")
    assert erased_key("c-42") != erased_key("c-43")


def test_a_customer_id_with_braces_cannot_move_its_keys_to_another_slot() -> None:
    assert slot(ckey("{x}", "factors")) == slot(outbox(shard_of("{x}")))


def test_ids_from_elsewhere_still_map_to_one_shard() -> None:
    for oid in ("nonexistent", "v-zz12", "v-", "-"):
        assert 0 <= shard_of_id(oid) < SHARDS
        assert shard_of_id(oid) == shard_of_id(oid)


def test_there_is_one_outbox_per_shard_and_one_for_policies() -> None:
    assert len(set(OUTBOXES)) == SHARDS + 1
    assert len({slot(box) for box in OUTBOXES}) == SHARDS + 1
