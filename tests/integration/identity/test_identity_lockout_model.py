"""The Lua of attempts and lockout against domain/lockout.py, on the real redis-server.

Random sequences of reservations, settlements (in any interleaving, as concurrent
checks would make them), lock expiry and administrator unlocks go through both the
store and the pure model; every answer and the counters after every step must agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import astuple
from typing import Any

import pytest

from services.identity.adapters.redis.keys import ckey, vkey
from services.identity.adapters.redis.store import RedisStore
from services.identity.bootstrap import Wiring
from services.identity.domain import lockout
from services.identity.domain.lockout import FAILURE_CAP, Counters
from services.identity.ports import LockState
from shared.config import Settings
from tests.integration.identity.conftest import GOLD, Api

CID = "c-model"
LOCKOUT = 900


class Model:
    """The customer's counters and each verification's attempts, on a virtual clock."""

    def __init__(self) -> None:
        self.customer = Counters()
        self.attempts: dict[str, int] = {}
        self.now = 0.0

    def counters(self, vid: str) -> Counters:
        return Counters(
            self.attempts.get(vid, 0),
            self.customer.failures,
            self.customer.locked_until,
            self.customer.streak,
        )

    def keep(self, vid: str, c: Counters) -> None:
        self.attempts[vid] = c.attempts
        self.customer = Counters(0, c.failures, c.locked_until, c.streak)

    def reserve(self, vid: str, max_attempts: int) -> tuple[bool, int, int, bool]:
        r, after = lockout.reserve(self.counters(vid), max_attempts, self.now)
        self.keep(vid, after)
        return r.granted, r.remaining, r.retry_after, r.held

    def settle(
        self, vid: str, success: bool, max_attempts: int, *, approves: bool = True
    ) -> tuple[bool, int]:
        locked, after = lockout.settle(
            self.counters(vid), success, max_attempts, LOCKOUT, self.now, approves=approves
        )
        self.keep(vid, after)
        return locked, 0 if locked else lockout.remaining(after, max_attempts)


def stored(redis: Any, vids: list[str]) -> tuple[dict[str, int], int, int, bool]:
    def num(key: str) -> int:
        return int(redis.get(key) or 0)

    attempts = {v: num(vkey(v) + ":att") for v in vids}
    locked = redis.exists(ckey(CID, "lock")) == 1
    return attempts, num(ckey(CID, "fail")), num(ckey(CID, "streak")), locked


def modelled(model: Model, vids: list[str]) -> tuple[dict[str, int], int, int, bool]:
    c = model.customer
    attempts = {v: model.attempts.get(v, 0) for v in vids}
    return attempts, c.failures, c.streak, c.locked_until > model.now


@pytest.mark.parametrize(
    ("seed", "max_attempts", "p_success"),
    [(0, 5, 0.0), (1, 3, 0.0), (2, 1, 0.01), (3, 20, 0.1)],
)
def test_the_lua_and_the_domain_model_agree_step_by_step(
    redis: Any, seed: int, max_attempts: int, p_success: float
) -> None:
    rng = random.Random(seed)
    store, model = RedisStore(redis), Model()
    vids = [store.new_id("v", CID) for _ in range(3)]
    outstanding: list[str] = []  # reservations granted and not yet settled
    held_refusals = unlocks_when_held = 0
    for step in range(1500):
        op = rng.random()
        where = f"seed {seed} step {step}"
        if model.customer.held and op < 0.03:
            store.unlock(CID, [])
            model.customer = lockout.unlock(model.customer)
            unlocks_when_held += 1
        elif op < 0.45 or not outstanding and op < 0.8:
            vid = rng.choice(vids)
            got = astuple(store.reserve_attempt(vid, CID, max_attempts).reservation)
            assert got == model.reserve(vid, max_attempts), where
            if got[0]:
                outstanding.append(vid)
            held_refusals += got[3]
        elif op < 0.8:
            vid = outstanding.pop(rng.randrange(len(outstanding)))
            success = rng.random() < p_success
            got: tuple[Any, ...]
            if success and rng.random() < 0.5:  # a successful check that leaves it pending
                got = (
                    False,
                    store.settle_success(vid, CID, "totp", max_attempts, LOCKOUT).remaining,
                )
                assert got == model.settle(vid, success, max_attempts, approves=False), where
            else:
                got = astuple(store.settle_attempt(vid, CID, success, max_attempts, LOCKOUT))
                assert got == model.settle(vid, success, max_attempts), where
        elif op < 0.93:  # the lock runs out: the model's clock moves past it
            redis.delete(ckey(CID, "lock"))
            model.now = max(model.now, model.customer.locked_until)
        elif op < 0.999:  # a fresh verification of the same customer
            vids[rng.randrange(len(vids))] = store.new_id("v", CID)
        else:
            store.unlock(CID, [])
            model.customer = lockout.unlock(model.customer)
        assert stored(redis, vids) == modelled(model, vids), where
        if model.customer.held:
            assert redis.ttl(ckey(CID, "streak")) == -1, where  # no expiry once held
    if p_success == 0.0:  # these sequences reach the cap, are refused, and are unlocked
        assert held_refusals > 0 and unlocks_when_held > 0


def test_many_lockout_cycles_never_evaluate_more_than_a_hundred_failures(redis: Any) -> None:
    store = RedisStore(redis)
    evaluated, cycles = 0, 0
    while cycles < 200:
        vid = store.new_id("v", CID)
        granted, _, retry, held = astuple(store.reserve_attempt(vid, CID, 5).reservation)
        while granted:
            evaluated += 1
            store.settle_attempt(vid, CID, False, 5, LOCKOUT)
            granted, _, retry, held = astuple(store.reserve_attempt(vid, CID, 5).reservation)
        if held:
            break
        assert retry > 0
        redis.delete(ckey(CID, "lock"))  # the attacker waits the lockout out
        cycles += 1
    # 19 lockouts sat out; the 20th run of five failures ends held, not locked for a while
    assert evaluated == FAILURE_CAP and cycles == FAILURE_CAP // 5 - 1
    redis.delete(ckey(CID, "lock"))
    assert astuple(store.reserve_attempt(store.new_id("v", CID), CID, 5).reservation) == (
        False,
        0,
        0,
        True,
    )
    assert store.lock_state(CID) == LockState(0, True)


def test_an_administrator_unlocks_a_customer_held_after_a_hundred_failures(
    make_settings: Callable[..., Settings],
    headers: Callable[[str], dict[str, str]],
    redis: Any,
) -> None:
    from services.identity.app import create_app

    app = create_app(make_settings("identity", IDENTITY_KBA_ITERATIONS="1000"))
    service: Wiring = app.extensions["sb"].extras["identity"]
    api = Api(app.test_client(), headers)
    api.tier("gold", {**GOLD, "min_factors": 1, "max_attempts": 50})
    _, totp = api.enroll_totp("c-1")
    answers: list[int] = []
    for _ in range(FAILURE_CAP // 50):
        vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
        answers += [api.check(vid, "totp", code="000000").status_code for _ in range(50)]
        redis.delete(ckey("c-1", "lock"))  # sit the lockout out
    assert answers == [200] * FAILURE_CAP
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    refused = api.check(vid, "totp", code=totp.now())
    assert refused.status_code == 423 and "Retry-After" not in refused.headers
    assert "administrator" in refused.json["detail"]
    assert api.challenge(vid, "totp").status_code == 423
    export = api.call("GET", "/v1/customers/c-1/export", "admin").json
    assert export["locked_until_unlocked"] is True

    assert api.call("DELETE", "/v1/customers/c-1/lockout", "channel").status_code == 403
    assert api.call("DELETE", "/v1/customers/c-1/lockout", "admin").status_code == 204
    assert api.call("DELETE", "/v1/customers/c-1/lockout", "admin").status_code == 204
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.customer.unlocked") == 1  # the second call changed nothing
    assert service.store.lock_state("c-1") == LockState(0, False)
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    assert api.check(vid, "totp", code=totp.now()).json["status"] == "approved"
