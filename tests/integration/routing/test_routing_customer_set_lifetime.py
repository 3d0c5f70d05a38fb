"""The customer's task set (``cust:<customer>``), through which erasure and export find
tasks, lives as long as the longest-lived of its tasks: an open task waiting longer
than the retention is still exported and erased."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.routing.service import RoutingService

P = "sb:rt:{default}:"


def expired(redis: Any, key: str, timeout: float = 60.0) -> bool:
    """Whether ``key`` is gone within ``timeout`` (Redis expires keys on its own clock)."""
    deadline = time.monotonic() + timeout
    while redis.exists(key):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


VOICE = {"channel": "voice", "category": "basic"}


def test_an_open_task_older_than_the_retention_is_still_exported_and_erased(
    make_service: Callable[..., RoutingService], redis: Any
) -> None:
    service = make_service(retention_s=1)
    tid = service.create_task({**VOICE, "customer_id": "gdpr"})["task_id"]
    time.sleep(2.2)  # real seconds: Redis expires keys on its own clock

    assert [t["task_id"] for t in service.export_customer("gdpr")["tasks"]] == [tid]
    service.erase_customer("gdpr")
    assert not redis.exists(P + "task:" + tid)
    assert redis.zscore(P + "queue:voice", tid) is None
    assert not redis.exists(P + "cust:gdpr")


def test_ending_one_task_keeps_the_set_while_another_is_open_then_expires_it(
    make_service: Callable[..., RoutingService], redis: Any
) -> None:
    service = make_service(retention_s=1)
    ended = service.create_task({**VOICE, "customer_id": "c"})["task_id"]
    open_ = service.create_task({**VOICE, "customer_id": "c"})["task_id"]
    service.cancel_task(ended, "hung up")
    assert redis.ttl(P + "cust:c") == -1  # the open task still needs it

    assert expired(redis, P + "task:" + ended)  # on Redis's clock
    assert [t["task_id"] for t in service.export_customer("c")["tasks"]] == [open_]
    service.cancel_task(open_, "hung up")
    assert redis.smembers(P + "cust:c") == {open_}  # the expired id dropped
    # The set outlives its last task. Two PTTLs are comparable only as read: the set's
    # first, so the task's, read later, can only be smaller if it expires no later (read
    # the other way round, a millisecond ticking between the reads failed the test).
    # -2 is gone: a busy machine may let the second pass meanwhile.
    set_left = redis.pttl(P + "cust:c")
    task_left = redis.pttl(P + "task:" + open_)
    assert set_left != -1 and task_left <= set_left <= 1000

    # both gone with the last task: nothing left on the customer
    assert expired(redis, P + "task:" + open_)
    assert expired(redis, P + "cust:c")


def test_a_set_given_a_ttl_by_an_older_version_loses_it_with_the_next_task(
    service: RoutingService, redis: Any
) -> None:
    first = service.create_task({**VOICE, "customer_id": "c"})["task_id"]
    redis.expire(P + "cust:c", 60)
    service.create_task({**VOICE, "customer_id": "c"})
    assert redis.ttl(P + "cust:c") == -1
    redis.expire(P + "cust:c", 60)
    service.cancel_task(first, "hung up")  # another task of the customer is still open
    assert redis.ttl(P + "cust:c") == -1


def test_an_ended_task_whose_set_expired_under_it_is_filed_again(
    service: RoutingService, redis: Any
) -> None:
    tid = service.create_task({**VOICE, "customer_id": "c"})["task_id"]
    redis.delete(P + "cust:c")  # as an older version's expiry did
    service.cancel_task(tid, "hung up")
    assert [t["task_id"] for t in service.export_customer("c")["tasks"]] == [tid]
    assert redis.ttl(P + "cust:c") >= redis.ttl(P + "task:" + tid) > 0


def test_a_merge_keeps_the_survivors_set_while_it_lists_the_sources_open_task(
    make_service: Callable[..., RoutingService], redis: Any
) -> None:
    service = make_service(retention_s=1)
    own = service.create_task({**VOICE, "customer_id": "survivor"})["task_id"]
    service.cancel_task(own, "hung up")  # the survivor's set: the ended task's TTL
    moved = service.create_task({**VOICE, "customer_id": "source"})["task_id"]
    assert service.merge_customers("survivor", "source") == 1
    assert redis.ttl(P + "cust:survivor") == -1

    assert expired(redis, P + "task:" + own)
    assert [t["task_id"] for t in service.export_customer("survivor")["tasks"]] == [moved]


def test_an_unmerge_gives_the_survivor_its_ended_tasks_ttl_back(
    service: RoutingService, redis: Any
) -> None:
    own = service.create_task({**VOICE, "customer_id": "survivor"})["task_id"]
    service.cancel_task(own, "hung up")
    moved = service.create_task({**VOICE, "customer_id": "source"})["task_id"]
    service.merge_customers("survivor", "source")
    assert redis.ttl(P + "cust:survivor") == -1

    assert service.unmerge_customers("survivor", "source") == 1
    assert redis.ttl(P + "cust:source") == -1  # the open task went back
    assert redis.ttl(P + "cust:survivor") >= redis.ttl(P + "task:" + own) > 0
    assert [t["task_id"] for t in service.export_customer("source")["tasks"]] == [moved]
