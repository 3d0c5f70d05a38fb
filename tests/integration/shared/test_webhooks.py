"""Outgoing webhooks end to end: the admin API on the routing app, the worker's consumer
and deliverer on the real test Redis, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from services.routing.app import create_app
from shared.bus import Consumer, EventPublisher
from shared.config import Settings
from shared.events import STREAMS, Event
from shared.webhooks.config import WebhookConfig
from shared.webhooks.store import WebhookStore
from shared.webhooks.worker import GROUP, Deliverer, fan_out

STREAM = STREAMS["routing"]
# Outside dev mode every secret is configured, none generated.
PRODUCTION = {
    "SB_ENV": "production",
    "SB_INTERNAL_API_KEY": "internal-key-for-the-tests",
}


class Receiver:
    """Answers each request with the next of ``statuses`` (then 200) and records it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["status"] < 300]


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


FAST = {
    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
    "WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
    "WEBHOOK_POLL_SECONDS": "0.02",
    "WEBHOOK_TIMEOUT_SECONDS": "5",
}


class Stack:
    """The routing app and a webhook worker for the routing stream, in this process."""

    def __init__(self, settings: Settings, redis: Any) -> None:
        self.settings = settings
        self.redis = redis
        self.client = create_app(settings).test_client()
        self.config = WebhookConfig.from_settings(settings)
        self.store = WebhookStore(redis, "routing", self.config.sealer, log_max=20)
        self.publisher = EventPublisher(redis, STREAM)
        self.consumer = Consumer(
            redis, [STREAM], GROUP, "test", {"*": fan_out(self.store)}, block_ms=20
        )
        self.stop = threading.Event()
        self.deliverer = Deliverer(self.store, self.publisher, self.config)
        self.threads = [
            threading.Thread(target=self.consumer.run, args=(self.stop,), daemon=True),
            threading.Thread(target=self.deliverer.run, args=(self.stop,), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def publish(self, type_: str, **data: Any) -> Event:
        event = Event.new(type_, data, source="routing")
        self.publisher.publish(event)
        return event

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


@pytest.fixture
def stack(make_settings: Callable[..., Settings], redis: Any) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def make(**env: str) -> Stack:
        made.append(Stack(make_settings("routing", **{**FAST, **env}), redis))
        return made[-1]

    yield make
    for s in made:
        s.close()


def put(s: Stack, name: str, headers: Any, **body: Any) -> Any:
    return s.client.put(f"/v1/admin/webhooks/{name}", json=body, headers=headers("admin"))


def test_deliveries_are_signed_per_standard_webhooks_and_verify_with_its_library(
    stack: Callable[..., Stack], receiver: Receiver, headers: Any
) -> None:
    s = stack()
    r = put(s, "ops", headers, url=receiver.url, events=["routing.task.*"])
    assert r.status_code == 201, r.json
    secret = r.json["secret"]
    assert secret.startswith("whsec_")
    event = s.publish("routing.task.created", task_id="t-1")
    wait_for(receiver.delivered)
    request = receiver.requests[0]
    payload = Webhook(secret).verify(request["body"], request["headers"])
    assert payload["id"] == event.id and payload["type"] == "routing.task.created"
    assert payload["data"] == {"task_id": "t-1"}  # an object, not a JSON string
    assert request["headers"]["webhook-id"] == event.id
    # Never in clear again, in any answer.
    for answer in (
        s.client.get("/v1/admin/webhooks/ops", headers=headers("admin")).json,
        s.client.get("/v1/admin/webhooks", headers=headers("admin")).json["items"][0],
    ):
        assert answer["secret"] != secret and answer["secret"].startswith("whsec_...")
    # Nor at rest.
    assert secret not in json.dumps(s.redis.hgetall("sb:wh:{routing}:subs"))


def test_a_given_secret_is_used_and_another_pattern_is_not_delivered(
    stack: Callable[..., Stack], receiver: Receiver, headers: Any
) -> None:
    s = stack()
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert (
        put(
            s, "a", headers, url=receiver.url, events=["routing.agent.*"], secret=secret
        ).status_code
        == 201
    )
    s.publish("routing.task.created", task_id="no")
    s.publish("routing.agent.status_changed", agent_id="a-1")
    wait_for(receiver.delivered)
    assert [e["type"] for e in receiver.delivered()] == ["routing.agent.status_changed"]
    Webhook(secret).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])


def test_retried_with_backoff_in_order_then_delivered_and_logged(
    stack: Callable[..., Stack], receiver: Receiver, headers: Any
) -> None:
    s = stack()
    receiver.statuses = [500, 503, 500]
    put(s, "ordered", headers, url=receiver.url, events=["*"])
    sent = [s.publish("routing.task.created", n=i) for i in range(5)]
    wait_for(lambda: len(receiver.delivered()) == 5)
    # The first event failed three times; nothing behind it went before it.
    assert [e["id"] for e in receiver.delivered()] == [e.id for e in sent]
    ids = [json.loads(r["body"])["id"] for r in receiver.requests]
    assert ids[:4] == [sent[0].id] * 4
    # Each wait at least the backoff: 0.05, 0.1, 0.2 s.
    gaps = [
        b["at"] - a["at"]
        for a, b in zip(receiver.requests[:3], receiver.requests[1:4], strict=True)
    ]
    assert all(gap >= want * 0.9 for gap, want in zip(gaps, [0.05, 0.1, 0.2], strict=True))
    log = wait_for(
        lambda: (
            (
                page := s.client.get(
                    "/v1/admin/webhooks/ordered/deliveries?limit=3", headers=headers("admin")
                ).json
            )["items"]
            and len(s.store.deliveries("ordered", 100, None)[0]) == 8
            and page
        )
    )
    assert [i["outcome"] for i in log["items"]] == ["delivered"] * 3
    rest = s.client.get(
        f"/v1/admin/webhooks/ordered/deliveries?limit=10&cursor={log['next_cursor']}",
        headers=headers("admin"),
    ).json
    assert [i["outcome"] for i in rest["items"]] == ["delivered"] * 2 + ["retrying"] * 3
    assert [i["status_code"] for i in rest["items"][2:]] == [500, 503, 500]
    assert rest["next_cursor"] is None
    assert "secret" not in json.dumps(log) + json.dumps(rest)


def test_the_deliveries_log_is_bounded(
    stack: Callable[..., Stack], receiver: Receiver, headers: Any
) -> None:
    s = stack()  # log_max 20
    put(s, "busy", headers, url=receiver.url, events=["*"])
    sent = [s.publish("routing.task.created", n=i) for i in range(60)]
    newest = lambda: s.store.deliveries("busy", 1, None)[0]  # noqa: E731
    wait_for(lambda: (top := newest()) and top[0]["event_id"] == sent[-1].id)
    items, more = s.store.deliveries("busy", 100, None)
    # The last 20 attempts, exactly: the newest kept, the oldest gone.
    assert [i["event_id"] for i in items] == [e.id for e in reversed(sent[-20:])]
    assert more is None


def test_an_endpoint_that_keeps_failing_is_disabled_with_an_event(
    stack: Callable[..., Stack], receiver: Receiver, headers: Any
) -> None:
    s = stack(WEBHOOK_RETRY_PERIOD_SECONDS="0.5")
    receiver.statuses = [500] * 10_000
    put(s, "dead", headers, url=receiver.url, events=["routing.task.*"])
    s.publish("routing.task.created", n=1)
    view = wait_for(
        lambda: (
            (v := s.client.get("/v1/admin/webhooks/dead", headers=headers("admin")).json)["enabled"]
            is False
            and v
        )
    )
    assert view["disabled_reason"] == "failing"
    events = [f for _, f in s.redis.xrange(STREAM) if f["type"] == "routing.webhook.disabled"]
    assert len(events) == 1 and json.loads(events[0]["data"])["name"] == "dead"
    tried = len(receiver.requests)
    assert tried >= 2
    items = s.store.deliveries("dead", 100, None)[0]
    assert items[0]["outcome"] == "failed"
    # Disabled: later events are not queued nor sent; a PUT enables it again.
    s.publish("routing.task.created", n=2)
    s.publish("routing.webhook.probe")  # a marker: once fanned out, n=2 was too
    wait_for(lambda: s.consumer.stats.handled >= 4)
    assert s.redis.llen("sb:wh:{routing}:q:dead") == 0
    receiver.statuses = []
    assert put(s, "dead", headers, url=receiver.url, events=["routing.task.*"]).status_code == 200
    s.publish("routing.task.created", n=3)
    wait_for(lambda: [e["data"] for e in receiver.delivered()] == [{"n": 3}])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
    ],
)
def test_internal_targets_are_refused_outside_dev_mode(
    make_settings: Callable[..., Settings], headers: Any, url: str
) -> None:
    client = create_app(make_settings("routing", **PRODUCTION)).test_client()
    r = client.put(
        "/v1/admin/webhooks/x", json={"url": url, "events": ["*"]}, headers=headers("admin")
    )
    assert r.status_code == 400 and "url" in r.json["errors"], r.json


def test_internal_targets_are_allowed_by_the_allow_list_and_rechecked_at_delivery(
    stack: Callable[..., Stack],
    make_settings: Callable[..., Settings],
    receiver: Receiver,
    headers: Any,
    redis: Any,
) -> None:
    s = stack(**PRODUCTION, WEBHOOK_ALLOWED_TARGETS="127.0.0.1/32")
    assert put(s, "ok", headers, url=receiver.url, events=["*"]).status_code == 201
    s.publish("routing.task.created", n=1)
    wait_for(receiver.delivered)
    # The allow-list shrinks (or the name now resolves inside): refused at delivery time.
    s.close()
    strict = stack(**PRODUCTION, WEBHOOK_RETRY_PERIOD_SECONDS="0")
    strict.publish("routing.task.created", n=2)
    items = wait_for(
        lambda: [i for i in strict.store.deliveries("ok", 10, None)[0] if i["outcome"] == "failed"]
    )
    assert items[0]["error"].startswith("refused")
    assert len(receiver.requests) == 1


def test_dev_mode_allows_local_targets_and_the_allow_list_takes_host_names(
    make_settings: Callable[..., Settings], headers: Any
) -> None:
    dev = create_app(make_settings("routing")).test_client()
    body = {"url": "http://localhost:9/x", "events": ["*"]}
    assert dev.put("/v1/admin/webhooks/x", json=body, headers=headers("admin")).status_code == 201
    prod = create_app(
        make_settings("routing", **PRODUCTION, WEBHOOK_ALLOWED_TARGETS="localhost")
    ).test_client()
    assert prod.put("/v1/admin/webhooks/y", json=body, headers=headers("admin")).status_code == 201


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("x", {"url": "ftp://example.com/", "events": ["*"]}, "url"),
        ("x", {"url": "http://u:p@localhost/", "events": ["*"]}, "url"),
        ("x", {"url": "not a url", "events": ["*"]}, "url"),
        ("x", {"url": "http://localhost:99999/", "events": ["*"]}, "url"),
        ("x", {"url": "http://localhost/", "events": []}, "events"),
        ("x", {"url": "http://localhost/", "events": ["crm.case.*"]}, "events"),
        ("x", {"url": "http://localhost/", "events": ["routing..x"]}, "events"),
        ("x", {"url": "http://localhost/", "events": ["routing.Task"]}, "events"),
        ("x", {"url": "http://localhost/", "events": "*"}, "events"),
        ("x", {"url": "http://localhost/", "events": ["*"], "secret": "s3cret"}, "secret"),
        ("x", {"url": "http://localhost/", "events": ["*"], "secret": "whsec_c2hvcnQ="}, "secret"),
        ("x", {"url": "http://localhost/", "events": ["*"], "secret": "whsec_!!"}, "secret"),
        ("x", {"events": ["*"]}, "url"),
        ("Bad Name", {"url": "http://localhost/", "events": ["*"]}, "name"),
    ],
)
def test_bad_input_is_a_400_problem(
    make_settings: Callable[..., Settings], headers: Any, name: str, body: Any, field: str
) -> None:
    client = create_app(make_settings("routing")).test_client()
    r = client.put(f"/v1/admin/webhooks/{name}", json=body, headers=headers("admin"))
    assert r.status_code == 400 and r.mimetype == "application/problem+json", r.json
    assert field in r.json["errors"], r.json


def test_bad_cursor_unknown_name_and_delete(
    make_settings: Callable[..., Settings], headers: Any
) -> None:
    client = create_app(make_settings("routing")).test_client()
    admin = headers("admin")
    body = {"url": "http://localhost/", "events": ["*"]}
    assert client.put("/v1/admin/webhooks/x", json=body, headers=admin).status_code == 201
    for cursor in ("nope", "eyJpZCI6IjEifQ", "eyJpZCI6MX0"):
        r = client.get(f"/v1/admin/webhooks/x/deliveries?cursor={cursor}", headers=admin)
        assert r.status_code == 400, (cursor, r.json)
    assert client.get("/v1/admin/webhooks/x/deliveries?limit=0", headers=admin).status_code == 400
    assert client.get("/v1/admin/webhooks/nope", headers=admin).status_code == 404
    assert client.delete("/v1/admin/webhooks/x", headers=admin).status_code == 204
    assert client.get("/v1/admin/webhooks/x", headers=admin).status_code == 404
    assert client.delete("/v1/admin/webhooks/x", headers=admin).status_code == 404


@pytest.mark.parametrize("scope", ["channel", "agent"])
def test_other_scopes_get_403(
    make_settings: Callable[..., Settings], headers: Any, scope: str
) -> None:
    client = create_app(make_settings("routing")).test_client()
    body = {"url": "http://localhost/", "events": ["*"]}
    assert client.put("/v1/admin/webhooks/x", json=body, headers=headers(scope)).status_code == 403
    assert client.get("/v1/admin/webhooks", headers=headers(scope)).status_code == 403


def test_every_service_documents_the_endpoints(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from services.crm.app import create_app as crm_app
    from services.identity.app import create_app as identity_app

    apps = [
        create_app(make_settings("routing")),
        identity_app(make_settings("identity")),
        crm_app(make_settings("crm", DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}")),
    ]
    for app in apps:
        paths = app.test_client().get("/openapi.json").json["paths"]
        assert set(paths["/v1/admin/webhooks/{name}"]) >= {"put", "get", "delete"}
        assert "get" in paths["/v1/admin/webhooks"]
        assert "get" in paths["/v1/admin/webhooks/{name}/deliveries"]
    apps[2].extensions["sb"]["store"].dispose()


def test_every_runnable_of_the_worker_process_stamps_its_progress(
    make_settings: Callable[..., Settings],
) -> None:
    """What ``python -m shared.webhooks.worker`` runs: a consumer and a deliverer per
    service, each stamping its progress, so the heartbeat (and compose's health check)
    tells a hung worker from a live one."""
    from shared.consumer_main import start
    from shared.liveness import Progress
    from shared.redis_conn import connect
    from shared.webhooks.worker import build

    settings = make_settings("webhooks", SB_CONSUMER_BLOCK_MS="20", **FAST)
    redis = connect(settings)
    runnables = build(settings, redis)
    assert len(runnables) == 2 * len(STREAMS)
    progress, stop = Progress(), threading.Event()
    threads = start("webhooks", runnables, stop, progress)
    try:
        wait_for(
            lambda: (
                len(slots := progress.slots()) == len(runnables)
                and all(s.stamps >= 2 for s in slots)
            )
        )
        assert progress.hung() == []
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        redis.close()
