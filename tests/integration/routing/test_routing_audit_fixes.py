"""Audited defects of the routing service, each pinned against a real redis-server:
offers ended by an admin PUT, verification before the task, late accepts, language
case, the customer task set's lifetime and the long-poll wake-up."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from services.routing.app import create_app
from services.routing.domain.model import InvalidTransition
from services.routing.service import RoutingService
from shared.pagination import encode_cursor

from .conftest import Clock, events

ZH_BILLING = {"skills": {"billing": 4}, "languages": ["zh"], "channels": {"chat": 2}}
CMD = {
    "channel": "chat",
    "customer_id": "c-1",
    "category": "basic",
    "skills": {"billing": 3},
    "language": "zh",
}
CUST_KEY = "sb:rt:{default}:cust:c-1"


def agent(service: RoutingService, aid: str, status: str = "available", **kw: Any) -> None:
    service.put_agent(aid, {"name": aid, **ZH_BILLING, **kw, "status": status})


def test_an_admin_put_to_offline_cancels_pending_offers_and_requeues_them(
    service: RoutingService, redis: Any
) -> None:
    agent(service, "a1")
    view = service.create_task(CMD)
    assert view["agent_id"] == "a1"
    agent(service, "a2")  # nothing queued yet: a2 stays free

    service.put_agent("a1", {"name": "a1", **ZH_BILLING, "status": "offline"})

    assert service.reservations_of("a1") == []
    assert service.task_view(view["task_id"])["agent_id"] == "a2"
    canceled = events(redis, type_prefix="routing.reservation.canceled")
    assert [(e["agent_id"], e["reservation_id"]) for e in canceled] == [
        ("a1", view["reservation_id"])
    ]
    assert service.agent_view("a1")["load"] == {"chat": 0}


def test_a_verification_before_the_task_marks_the_task_when_it_is_created(
    service: RoutingService, redis: Any
) -> None:
    assert service.mark_verified("c-1", "v-1") == 0
    view = service.create_task(CMD)
    other = service.create_task({**CMD, "customer_id": "c-2"})
    assert view["verified"] is True and other["verified"] is False
    assert service.task_view(view["task_id"])["verified"] is True
    marked = events(redis, type_prefix="routing.task.verified")
    assert [(e["task_id"], e["verification_id"]) for e in marked] == [(view["task_id"], "v-1")]
    ttl = redis.ttl("sb:rt:{default}:verified:c-1")
    assert 0 < ttl <= service.config.verified_ttl_s


def test_a_verification_after_the_task_still_marks_it(service: RoutingService, redis: Any) -> None:
    view = service.create_task(CMD)
    assert view["verified"] is False
    assert service.mark_verified("c-1", "v-2") == 1
    assert service.task_view(view["task_id"])["verified"] is True
    assert [e["task_id"] for e in events(redis, type_prefix="routing.task.verified")] == [
        view["task_id"]
    ]


def test_an_accept_after_expires_at_is_refused_and_ends_the_offer_as_a_timeout(
    service: RoutingService, clock: Clock, redis: Any
) -> None:
    agent(service, "a1")
    view = service.create_task(CMD)
    agent(service, "a2", status="offline")
    clock.advance(service.config.reservation_timeout_s)  # the dispatcher has not ticked
    service.set_agent_status("a2", "available")  # nothing queued yet: a2 stays free

    with pytest.raises(InvalidTransition):
        service.accept(view["reservation_id"])

    res = service.store.reservation(view["reservation_id"])
    assert res is not None and res.status == "timeout"
    assert service.task_view(view["task_id"])["agent_id"] == "a2"  # offered to the next
    assert [
        e["reservation_id"] for e in events(redis, type_prefix="routing.reservation.timeout")
    ] == [view["reservation_id"]]
    assert service.tick() == 0  # the offer's timer ended with it
    assert len(events(redis, type_prefix="routing.reservation.timeout")) == 1


def test_an_accept_just_before_expires_at_still_assigns(
    service: RoutingService, clock: Clock
) -> None:
    agent(service, "a1")
    view = service.create_task(CMD)
    clock.advance(service.config.reservation_timeout_s - 0.001)
    assert service.accept(view["reservation_id"])["status"] == "accepted"


def test_language_tags_match_whatever_their_case(service: RoutingService) -> None:
    agent(service, "a1", languages=["EN", "zh-Hant"])
    assert service.agent_view("a1")["languages"] == ["en", "zh-hant"]
    view = service.create_task({**CMD, "language": "en"})
    assert view["agent_id"] == "a1" and view["language"] == "en"
    view = service.create_task({**CMD, "language": "ZH-HANT"})
    assert view["agent_id"] == "a1" and view["language"] == "zh-hant"


def test_the_customer_task_set_expires_no_sooner_than_its_tasks(
    service: RoutingService, redis: Any
) -> None:
    view = service.create_task(CMD)
    assert redis.ttl(CUST_KEY) == -1  # an open task never expires: nor does its set
    redis.expire(CUST_KEY, 60)  # as an older version left it
    service.cancel_task(view["task_id"], "hung up")  # the task hash now expires too
    assert redis.ttl(CUST_KEY) >= redis.ttl(f"sb:rt:{{default}}:task:{view['task_id']}")


def test_a_long_poll_wakes_when_an_offer_is_made(service: RoutingService) -> None:
    agent(service, "a1")
    got: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        got["items"] = service.wait_for_offers("a1", 8.0)
        got["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # the poll (most likely) waits already when the task comes
    view = service.create_task(CMD)
    poller.join(30)
    assert [i["reservation_id"] for i in got["items"]] == [view["reservation_id"]]
    assert got["seconds"] < 8.0  # woken by the offer, before its wait ran out


def test_a_long_poll_without_offers_answers_empty_after_its_wait(
    service: RoutingService,
) -> None:
    agent(service, "a1")
    started = time.monotonic()
    assert service.wait_for_offers("a1", 0.5) == []
    assert 0.4 < time.monotonic() - started < 3


def test_a_forged_agent_stats_cursor_is_a_400(make_settings: Any, headers: Any) -> None:
    """A lone surrogate in the cursor could not be sent to Redis: it was a 500."""
    client = create_app(make_settings("routing")).test_client()
    for after in ("\ud800", "a\u0000", True):
        cursor = encode_cursor({"after": after})
        r = client.get(f"/v1/stats/agents?cursor={cursor}", headers=headers("admin"))
        assert r.status_code == 400, (after, r.json)
        assert r.json["detail"] == "the cursor is not one this service issued"
