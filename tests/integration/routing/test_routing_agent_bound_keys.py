"""Keys bound to one agent (API.md B, `client:secret:agent:<agent_id>`): every routing
route that takes an agent id, or acts on a task or reservation held by an agent,
refuses another agent's with a 403 problem and changes nothing in Redis; the bound
key's own agent works, and an unbound agent key acts for any agent as before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.routing import ownership
from services.routing.app import create_app
from services.routing.domain.model import AgentBinding, NotFound
from services.routing.service import RoutingService
from shared.testing import auth
from tests.conftest import API_KEYS, API_KEYS_ENV

DESK7, DESK8, DESK_CH = "desk7-secret", "desk8-secret", "desk7ch-secret"
BOUND_ENV = ",".join(
    [
        API_KEYS_ENV,
        f"desk7:{DESK7}:agent:a-7",
        f"desk8:{DESK8}:agent:a-8",
        f"desk7ch:{DESK_CH}:agent+channel:a-7",
    ]
)
PROFILE = {"skills": {"billing": 3}, "languages": ["en"], "channels": {"chat": 1}}
TASK = {"channel": "chat", "customer_id": "c-1", "category": "basic", "language": "en"}


class Routing:
    def __init__(self, client: FlaskClient, service: RoutingService, redis: Any) -> None:
        self.client, self.service, self.redis = client, service, redis

    def call(self, method: str, path: str, secret: str, **kw: Any) -> Any:
        return self.client.open(path, method=method, headers=auth(secret), **kw)

    def agent(self, aid: str, status: str = "available") -> None:
        self.service.put_agent(aid, {"name": aid, **PROFILE, "status": status})

    def offer_to(self, aid: str) -> dict[str, Any]:
        """A task reserved to ``aid`` (the only available agent)."""
        view = self.service.create_task(TASK)
        assert view["agent_id"] == aid, view
        return view

    def assigned_to(self, aid: str) -> dict[str, Any]:
        view = self.offer_to(aid)
        self.service.accept(view["reservation_id"])
        return self.service.task_view(view["task_id"])

    def state(self) -> dict[str, Any]:
        """Every routing key and event stream, read by type: what a refusal must not touch."""
        out: dict[str, Any] = {}
        for key in sorted(self.redis.scan_iter("sb:*")):
            if key.startswith("sb:idem:") or key.startswith("sb:metrics"):
                continue
            kind = self.redis.type(key)
            read: Callable[[str], Any] = {
                "hash": self.redis.hgetall,
                "set": self.redis.smembers,
                "string": self.redis.get,
                "zset": lambda k: self.redis.zrange(k, 0, -1, withscores=True),
                "stream": self.redis.xrange,
                "list": lambda k: self.redis.lrange(k, 0, -1),
            }[kind]
            out[key] = read(key)
        return out


@pytest.fixture
def routing(make_settings: Callable[..., Any], redis: Any) -> Iterator[Routing]:
    app = create_app(make_settings("routing", API_KEYS=BOUND_ENV))
    service: RoutingService = app.extensions["sb"]["routing"]
    r = Routing(app.test_client(), service, redis)
    r.agent("a-7", status="offline")
    r.agent("a-8")
    yield r


def refused(r: Routing, method: str, path: str, secret: str = DESK7, **kw: Any) -> None:
    """403 problem document, and nothing changed in Redis."""
    before = r.state()
    resp = r.call(method, path, secret, **kw)
    assert resp.status_code == 403, resp.json
    assert resp.mimetype == "application/problem+json"
    assert resp.json["type"].endswith("/agent-binding") and resp.json["status"] == 403
    assert r.state() == before


# -- agent ids in the path ---------------------------------------------------------------
def test_a_bound_key_sets_its_own_status_and_not_another_agents(routing: Routing) -> None:
    refused(routing, "PUT", "/v1/agents/a-8/status", json={"status": "offline"})
    # The agent id is compared before anything is read: an unknown agent is 403 too.
    refused(routing, "PUT", "/v1/agents/nobody/status", json={"status": "away"})
    own = routing.call("PUT", "/v1/agents/a-7/status", DESK7, json={"status": "available"})
    assert own.status_code == 200 and own.json["status"] == "available"


def test_an_unbound_agent_key_still_sets_any_agents_status(routing: Routing) -> None:
    r = routing.call("PUT", "/v1/agents/a-8/status", API_KEYS["agent"], json={"status": "away"})
    assert r.status_code == 200 and r.json["status"] == "away"


def test_a_bound_key_reads_only_its_own_agent_and_reservations(routing: Routing) -> None:
    offer = routing.offer_to("a-8")
    refused(routing, "GET", "/v1/agents/a-8")
    refused(routing, "GET", "/v1/agents/a-8/reservations")
    refused(routing, "GET", "/v1/agents/a-8/reservations?wait=1")
    mine = routing.call("GET", "/v1/agents/a-8/reservations", DESK8)
    assert [i["reservation_id"] for i in mine.json["items"]] == [offer["reservation_id"]]
    assert routing.call("GET", "/v1/agents/a-8", DESK8).status_code == 200
    unbound = routing.call("GET", "/v1/agents/a-8/reservations", API_KEYS["agent"])
    assert unbound.status_code == 200 and len(unbound.json["items"]) == 1


def test_the_agent_roster_is_for_unbound_keys_and_queue_totals_for_all(routing: Routing) -> None:
    refused(routing, "GET", "/v1/stats/agents")
    assert routing.call("GET", "/v1/stats/agents", API_KEYS["agent"]).status_code == 200
    assert routing.call("GET", "/v1/stats/queues", DESK7).status_code == 200
    assert routing.call("GET", "/v1/stats", DESK7).status_code == 200


# -- reservations ------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["accept", "reject"])
def test_only_the_offered_agent_answers_an_offer(routing: Routing, action: str) -> None:
    offer = routing.offer_to("a-8")
    path = f"/v1/reservations/{offer['reservation_id']}/{action}"
    refused(routing, "POST", path)
    refused(routing, "POST", path, secret=DESK_CH)  # another scope on the key changes nothing
    own = routing.call("POST", path, DESK8)
    assert own.status_code == 200, own.json
    assert own.json["status"] == ("accepted" if action == "accept" else "rejected")


def test_an_unbound_agent_key_still_accepts_any_offer(routing: Routing) -> None:
    offer = routing.offer_to("a-8")
    path = f"/v1/reservations/{offer['reservation_id']}/accept"
    assert routing.call("POST", path, API_KEYS["agent"]).status_code == 200


def test_another_agents_expired_offer_is_refused_before_it_is_ended(routing: Routing) -> None:
    """An accept past expires_at ends the offer as a timeout: not for someone else's."""
    offer = routing.offer_to("a-8")
    rkey = f"sb:rt:{{default}}:res:{offer['reservation_id']}"
    routing.redis.hset(rkey, "expires", 1)
    refused(routing, "POST", f"/v1/reservations/{offer['reservation_id']}/accept")
    assert routing.redis.hget(rkey, "status") == "pending"


def test_a_missing_reservation_or_task_is_still_a_404_for_a_bound_key(routing: Routing) -> None:
    missing = "r_" + "0" * 32
    assert routing.call("POST", f"/v1/reservations/{missing}/accept", DESK7).status_code == 404
    for method, suffix in (("GET", ""), ("POST", "/complete"), ("POST", "/cancel")):
        path = f"/v1/tasks/t_{'0' * 32}{suffix}"
        assert routing.call(method, path, DESK7).status_code == 404, path


# -- tasks -------------------------------------------------------------------------------
def test_a_bound_key_completes_only_its_own_task(routing: Routing) -> None:
    task = routing.assigned_to("a-8")
    path = f"/v1/tasks/{task['task_id']}/complete"
    refused(routing, "POST", path)
    own = routing.call("POST", path, DESK8)
    assert own.status_code == 200 and own.json["status"] == "completed"


def test_an_unbound_agent_key_still_completes_any_task(routing: Routing) -> None:
    task = routing.assigned_to("a-8")
    done = routing.call("POST", f"/v1/tasks/{task['task_id']}/complete", API_KEYS["agent"])
    assert done.status_code == 200 and done.json["status"] == "completed"


def test_a_bound_key_reads_and_cancels_only_its_own_task(routing: Routing) -> None:
    task = routing.offer_to("a-8")
    path = f"/v1/tasks/{task['task_id']}"
    refused(routing, "GET", path)
    refused(routing, "POST", path + "/cancel", json={"reason": "hung up"})
    assert routing.call("GET", path, DESK8).json["agent_id"] == "a-8"
    own = routing.call("POST", path + "/cancel", DESK8, json={"reason": "hung up"})
    assert own.status_code == 200 and own.json["status"] == "canceled"


def test_a_queued_task_belongs_to_no_agent_and_so_not_to_a_bound_key(routing: Routing) -> None:
    routing.call("PUT", "/v1/agents/a-8/status", DESK8, json={"status": "offline"})
    task = routing.service.create_task(TASK)
    assert task["status"] == "queued"
    path = f"/v1/tasks/{task['task_id']}"
    refused(routing, "GET", path)
    refused(routing, "POST", path + "/cancel")
    # A bound key that also holds `channel` still creates tasks: they are nobody's yet.
    created = routing.call("POST", "/v1/tasks", DESK_CH, json=TASK)
    assert created.status_code == 201
    assert routing.call("GET", path, API_KEYS["agent"]).status_code == 200
    assert routing.call("GET", path, API_KEYS["channel"]).status_code == 200


# -- the same rules without HTTP -----------------------------------------------------------
def test_the_use_cases_check_the_task_or_offer_agent_in_the_transition_itself(
    service: RoutingService,
) -> None:
    for aid in ("a-7", "a-8"):
        service.put_agent(aid, {"name": aid, **PROFILE, "status": "offline"})
    service.set_agent_status("a-8", "available")
    offer = service.create_task(TASK)
    with pytest.raises(AgentBinding):
        service.accept(offer["reservation_id"], as_agent="a-7")
    with pytest.raises(AgentBinding):
        service.reject(offer["reservation_id"], as_agent="a-7")
    service.accept(offer["reservation_id"], as_agent="a-8")
    tid = offer["task_id"]
    with pytest.raises(AgentBinding):
        service.complete_task(tid, as_agent="a-7")
    with pytest.raises(AgentBinding):
        service.cancel_task(tid, "x", as_agent="a-7")
    assert service.task_view(tid)["status"] == "assigned"
    with pytest.raises(NotFound):
        service.complete_task("t_" + "0" * 32, as_agent="a-7")
    assert service.complete_task(tid, as_agent="a-8")["status"] == "completed"


def test_the_ownership_guards_compare_the_bound_agent() -> None:
    assert ownership.require_agent(None, "a-8") == "a-8"
    assert ownership.require_agent("a-8", "a-8") == "a-8"
    with pytest.raises(AgentBinding):
        ownership.require_agent("a-7", "a-8")
    ownership.require_unbound(None, "the roster")
    with pytest.raises(AgentBinding):
        ownership.require_unbound("a-7", "the roster")
