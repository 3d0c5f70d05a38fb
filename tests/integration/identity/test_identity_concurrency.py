"""Atomicity against the real redis-server, with real concurrent requests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from services.identity.adapters.redis.store import RedisStore
from services.identity.bootstrap import Wiring
from services.identity.domain.factors import Attempt, Enrollment, FactorPlugin, FactorRecord
from tests.integration.identity.conftest import GOLD, Api


class CountingFactor(FactorPlugin):
    """A knowledge factor that records every evaluation and always says no."""

    type = "counting"
    category: ClassVar[str] = "knowledge"
    enrollable: ClassVar[bool] = False

    def __init__(self) -> None:
        self.evaluations = 0
        self.lock = threading.Lock()

    def enroll(self, env: Any, customer_id: str, params: Any) -> Enrollment:
        raise NotImplementedError

    def check(self, env: Any, attempt: Attempt, records: list[FactorRecord]) -> bool:
        with self.lock:
            self.evaluations += 1
        return False


def in_parallel(n: int, fn: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_twenty_parallel_wrong_codes_never_evaluate_more_than_max_attempts(
    api: Api, service: Wiring
) -> None:
    counting = CountingFactor()
    service.registry.register(counting)
    api.tier("gold", {**GOLD, "allowed_factors": ["totp", "kba", "counting"]})
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    results = in_parallel(
        20, lambda i: service.verification.check(vid, {"factor": "counting", "code": "1"})
    )
    assert counting.evaluations == 5
    locked = [r for r in results if type(r).__name__ == "CustomerLocked"]
    assert len(locked) == 15
    assert service.store.lock_remaining("c-1") > 0


def test_twenty_parallel_wrong_codes_over_http_lock_once(api: Api, redis: Any) -> None:
    api.tier("gold", GOLD)
    api.enroll_totp("c-1")
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    statuses = in_parallel(20, lambda i: api.check(vid, "totp", code="000000").status_code)
    assert statuses.count(423) >= 15 and set(statuses) <= {200, 423}
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.verification.locked") == 1


def test_the_same_totp_code_submitted_ten_times_concurrently_is_accepted_once(
    api: Api, service: Wiring
) -> None:
    api.tier("gold", {**GOLD, "max_attempts": 20})  # nine refusals must not lock first
    _, totp = api.enroll_totp("c-1")
    vids = [api.start("c-1", "chat", tier="gold").json["verification_id"] for _ in range(10)]
    code = totp.now()
    results = in_parallel(
        10, lambda i: service.verification.check(vids[i], {"factor": "totp", "code": code})
    )
    accepted = [r for r in results if "totp" in r.body["satisfied_factors"]]
    assert len(accepted) == 1
    assert all(r.body["status"] == "pending" for r in results)


SOLO = {"min_factors": 1, "allowed_factors": ["totp"], "require_possession": False}


def test_the_same_code_approving_ten_verifications_concurrently_approves_one(
    api: Api, service: Wiring, redis: Any
) -> None:
    # A one-factor tier: each check would approve, so the step is claimed in the
    # approval's own script.
    api.tier("solo", {**SOLO, "max_attempts": 20})
    _, totp = api.enroll_totp("c-1")
    vids = [api.start("c-1", "chat", tier="solo").json["verification_id"] for _ in range(10)]
    code = totp.now()
    results = in_parallel(
        10, lambda i: service.verification.check(vids[i], {"factor": "totp", "code": code})
    )
    statuses = sorted(r.body["status"] for r in results)
    assert statuses == ["approved"] + ["pending"] * 9
    refused = [r.body for r in results if r.body["status"] == "pending"]
    # Each refusal is a failed attempt; consecutive failures are the customer's, so how many
    # remain depends on how many of the others had failed already.
    assert all(b["satisfied_factors"] == [] and b["remaining_attempts"] <= 19 for b in refused)
    assert len(service.store.sessions_of("c-1")) == 1
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.session.issued") == 1
    assert types.count("identity.verification.failed") == 9


def test_a_code_used_to_approve_fails_a_second_verification_and_writes_nothing(
    api: Api, service: Wiring
) -> None:
    api.tier("solo", SOLO)
    _, totp = api.enroll_totp("c-1")
    first, second = (api.start("c-1", "chat", tier="solo").json["verification_id"] for _ in "ab")
    code = totp.now()
    assert api.check(first, "totp", code=code).json["status"] == "approved"
    # The plugin finds the code right; the step's claim, in the approval's script, does not.
    again = api.check(second, "totp", code=code).json
    assert again["status"] == "pending" and again["satisfied_factors"] == []
    assert again["remaining_attempts"] == 4
    assert len(service.store.sessions_of("c-1")) == 1
    assert service.store.verification(second)["status"] == "pending"


def test_a_time_step_is_accepted_once_and_never_an_older_one(redis: Any) -> None:
    store = RedisStore(redis)
    assert store.accept_step("f-1", 100)
    assert not store.accept_step("f-1", 100)
    assert not store.accept_step("f-1", 99)
    assert store.accept_step("f-1", 101)
    outcomes = in_parallel(10, lambda i: store.accept_step("f-2", 500))
    assert outcomes.count(True) == 1


def test_a_delivered_code_is_consumed_once_under_concurrency(redis: Any) -> None:
    store = RedisStore(redis)
    store.store_code("v-1", "sms_otp", {"digest": "abc"}, 60)
    outcomes = in_parallel(10, lambda i: store.consume_code("v-1", "sms_otp", "abc"))
    assert outcomes.count(True) == 1


def test_the_throttle_allows_five_sends_in_ten_minutes_thirty_seconds_apart(redis: Any) -> None:
    store = RedisStore(redis)
    assert store.throttle("dest", 600, 5, 0) == 0
    for _ in range(4):
        assert store.throttle("dest", 600, 5, 0) == 0
    assert 590 <= store.throttle("dest", 600, 5, 0) <= 600
    assert store.throttle("other", 600, 5, 30) == 0
    assert 29 <= store.throttle("other", 600, 5, 30) <= 30
    outcomes = in_parallel(10, lambda i: store.throttle("burst", 600, 5, 0))
    assert outcomes.count(0) == 5
