"""The app factory's common rules, driven through a real app on a real Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema, fields, validate

from shared.app import Blueprint, build_app
from shared.auth import require_scope
from shared.config import Settings
from shared.errors import Conflict, TooManyRequests
from shared.pagination import PageArgs, encode_cursor, page_schema


class Widget(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=20))
    size = fields.Integer(load_default=1, validate=validate.Range(min=1))


class DomainRuleBroken(Exception):
    pass


def widget_app(settings: Settings, redis: Any) -> Flask:
    blp = Blueprint("widgets", __name__, url_prefix="/v1")
    created: list[dict[str, Any]] = []

    @blp.route("/widgets", methods=["POST"])
    @require_scope("channel")
    @blp.arguments(Widget)
    @blp.response(201, Widget)
    def create(body: dict[str, Any]) -> dict[str, Any]:
        widget = {"id": f"w-{redis.incr('widgets')}", **body}
        created.append(widget)
        return widget

    @blp.route("/widgets", methods=["GET"])
    @require_scope("channel", "agent")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(Widget))
    def list_(args: dict[str, Any]) -> dict[str, Any]:
        return {"items": created[: args["limit"]], "next_cursor": encode_cursor({"n": 1})}

    @blp.route("/slow", methods=["POST"])
    @require_scope("channel")
    @blp.response(201, Widget)
    def slow() -> dict[str, Any]:
        threading.Event().wait(0.3)
        return {"id": f"w-{redis.incr('slow')}", "name": "slow", "size": 1}

    @blp.route("/broken/<kind>")
    @require_scope("channel")
    def broken(kind: str) -> Any:
        if kind == "domain":
            raise DomainRuleBroken("widgets cannot be square")
        if kind == "conflict":
            raise Conflict("already there", extra={"other_id": "w-1"})
        if kind == "throttle":
            raise TooManyRequests("slow down", retry_after=30)
        raise RuntimeError("secret internals /etc/passwd")

    return build_app(
        settings,
        title="Widgets",
        blueprints=[blp],
        error_map={DomainRuleBroken: (422, "Domain Rule Broken")},
    )


@pytest.fixture
def app(make_settings: Callable[..., Settings], redis: Any) -> Flask:
    return widget_app(make_settings("identity"), redis)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


def test_a_missing_key_is_401_and_a_key_without_the_scope_is_403(client, headers) -> None:
    body = {"name": "a"}
    assert problem(client.post("/v1/widgets", json=body), 401)
    assert problem(
        client.post("/v1/widgets", json=body, headers={"Authorization": "Bearer no"}), 401
    )
    assert problem(client.post("/v1/widgets", json=body, headers=headers("ivr")), 403)
    assert problem(client.post("/v1/widgets", json=body, headers=headers("none")), 403)
    assert client.post("/v1/widgets", json=body, headers=headers("channel")).status_code == 201
    assert client.get("/v1/widgets", headers=headers("agent")).status_code == 200


def test_validation_errors_name_each_field(client, headers) -> None:
    body = problem(client.post("/v1/widgets", json={"size": 0}, headers=headers("channel")), 400)
    assert set(body["errors"]) == {"name", "size"}


def test_unknown_fields_are_rejected(client, headers) -> None:
    response = client.post(
        "/v1/widgets", json={"name": "a", "colour": "red"}, headers=headers("channel")
    )
    assert problem(response, 400)["errors"] == {"colour": ["Unknown field."]}


def test_malformed_json_is_a_400_problem(client, headers) -> None:
    response = client.post(
        "/v1/widgets", data="{not json", content_type="application/json", headers=headers("channel")
    )
    assert problem(response, 400)["title"] == "Malformed JSON"


def test_a_body_that_is_not_utf8_is_malformed_json(client, headers) -> None:
    response = client.post(
        "/v1/widgets",
        data=b'{"name": "\xff"}',
        content_type="application/json",
        headers=headers("channel"),
    )
    assert problem(response, 400)["title"] == "Malformed JSON"


@pytest.mark.parametrize(
    "body",
    [
        # A long integer sends the document to the standard library's parser, whose
        # own limits must be 400s too: nesting beyond the recursion limit...
        '{"a": 100000000000000000000, "b": ' + "[" * 5000 + "]" * 5000 + "}",
        # ...and integers beyond its 4,300 digits.
        '{"name": "big", "size": 1' + "0" * 5000 + "}",
        # ...and what orjson refuses: lone surrogates (as value or key, however deep)
        # and NaN / Infinity, which the standard library would read.
        '{"name": "\\ud800", "size": 1234567890123456789}',
        '{"name": "a", "size": 1234567890123456789, "x": [{"\\udfff": 1}]}',
        '{"name": "a", "size": 1234567890123456789, "x": NaN}',
        '{"name": "a", "size": 1234567890123456789, "x": -Infinity}',
    ],
    ids=[
        "deep-nesting",
        "5000-digit-integer",
        "lone-surrogate",
        "lone-surrogate-key",
        "nan",
        "infinity",
    ],
)
def test_a_document_past_the_parser_limits_is_malformed_json(client, headers, body) -> None:
    response = client.post(
        "/v1/widgets", data=body, content_type="application/json", headers=headers("channel")
    )
    assert problem(response, 400)["title"] == "Malformed JSON"


def test_a_huge_integer_is_read_exactly_not_as_a_float(client, headers) -> None:
    # 10**30 + 1 is not a float: parsed exactly, it is a valid size and comes back whole.
    body = '{"name": "big", "size": 1000000000000000000000000000001}'
    response = client.post(
        "/v1/widgets", data=body, content_type="application/json", headers=headers("channel")
    )
    assert response.status_code == 201, response.json
    assert response.json["size"] == 10**30 + 1


def test_a_body_that_is_not_json_is_415(client, headers) -> None:
    response = client.post(
        "/v1/widgets", data="name=a", content_type="text/plain", headers=headers("channel")
    )
    problem(response, 415)


def test_a_body_over_the_limit_is_413(client, headers) -> None:
    response = client.post(
        "/v1/widgets",
        data="x" * (2 * 1024 * 1024),
        content_type="application/json",
        headers=headers("channel"),
    )
    problem(response, 413)


def test_unknown_paths_and_methods_are_problems(client, headers) -> None:
    problem(client.get("/v1/nothing"), 404)
    response = client.delete("/healthz")
    problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_query_validation_is_a_400(client, headers) -> None:
    body = problem(client.get("/v1/widgets?limit=501", headers=headers("channel")), 400)
    assert "limit" in body["errors"]


def test_domain_errors_map_to_their_status(client, headers) -> None:
    body = problem(client.get("/v1/broken/domain", headers=headers("channel")), 422)
    assert body["detail"] == "widgets cannot be square"
    assert (
        problem(client.get("/v1/broken/conflict", headers=headers("channel")), 409)["other_id"]
        == "w-1"
    )
    throttled = client.get("/v1/broken/throttle", headers=headers("channel"))
    problem(throttled, 429)
    assert throttled.headers["Retry-After"] == "30"


def test_an_unexpected_error_is_a_500_without_internals(client, headers) -> None:
    body = problem(client.get("/v1/broken/boom", headers=headers("channel")), 500)
    assert "passwd" not in str(body) and "Traceback" not in str(body)


def test_request_ids_are_echoed_or_generated(client) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "bad id <x>"}).headers["X-Request-ID"]
        != "bad id <x>"
    )


def test_same_idempotency_key_and_body_replays_the_first_response(client, headers, redis) -> None:
    h = {**headers("channel"), "Idempotency-Key": "k-1"}
    first = client.post("/v1/widgets", json={"name": "a"}, headers=h)
    second = client.post("/v1/widgets", json={"name": "a"}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert redis.get("widgets") == "1"


def test_same_idempotency_key_with_another_body_is_409(client, headers, redis) -> None:
    h = {**headers("channel"), "Idempotency-Key": "k-2"}
    assert client.post("/v1/widgets", json={"name": "a"}, headers=h).status_code == 201
    problem(client.post("/v1/widgets", json={"name": "b"}, headers=h), 409)
    assert redis.get("widgets") == "1"


def test_idempotency_keys_are_per_client(client, headers, redis) -> None:
    for scope in ("channel", "all"):
        h = {**headers(scope), "Idempotency-Key": "shared"}
        assert client.post("/v1/widgets", json={"name": "a"}, headers=h).status_code == 201
    assert redis.get("widgets") == "2"


def test_a_rejected_request_does_not_burn_the_key(client, headers, redis) -> None:
    h = {**headers("channel"), "Idempotency-Key": "k-3"}
    assert client.post("/v1/widgets", json={"name": ""}, headers=h).status_code == 400
    # A 400 is final for that body; a different body is a different request.
    assert client.post("/v1/widgets", json={"name": ""}, headers=h).status_code == 400
    assert redis.get("widgets") is None


def test_ten_concurrent_duplicates_execute_once(app, headers, redis) -> None:
    h = {**headers("channel"), "Idempotency-Key": "burst"}
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def call() -> None:
        response = app.test_client().post("/v1/slow", headers=h)
        with lock:
            results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert redis.get("slow") == "1"
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1


def test_health_ready_metrics_and_openapi_need_no_key(client, headers) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["checks"] == {"redis": "ok"}
    client.get("/v1/widgets", headers=headers("channel"))
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'sb_http_requests_total{endpoint="/v1/widgets"' in metrics
    assert "sb_http_request_duration_seconds_bucket" in metrics
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/widgets" in spec["paths"] and "/readyz" in spec["paths"]
    assert "Widget" in spec["components"]["schemas"]


def test_readyz_is_503_when_a_dependency_is_down(make_settings, redis) -> None:
    def database() -> None:
        raise OSError("connection refused")

    app = build_app(make_settings("crm"), title="x", readiness={"database": database})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unavailable")


def test_errors_of_list_items_are_keyed_by_index(make_settings, redis, headers) -> None:
    class Many(Schema):
        names = fields.List(fields.String(validate=validate.Length(max=2)), required=True)

    blp = Blueprint("many", __name__, url_prefix="/v1")

    @blp.route("/many", methods=["POST"])
    @require_scope("channel")
    @blp.arguments(Many)
    @blp.response(201, Many)
    def many(body: dict[str, Any]) -> dict[str, Any]:
        return body

    client = build_app(make_settings("crm"), title="t", blueprints=[blp]).test_client()
    response = client.post(
        "/v1/many", json={"names": ["ok", "too long"]}, headers=headers("channel")
    )
    assert problem(response, 400)["errors"] == {"names": {"1": ["Longer than maximum length 2."]}}
    ok = client.post("/v1/many", json={"names": ["é", "中"]}, headers=headers("channel"))
    assert ok.status_code == 201 and ok.get_json() == {"names": ["é", "中"]}


def test_made_up_methods_share_one_metrics_label(client, headers) -> None:
    for i in range(20):
        assert client.open("/healthz", method=f"MADEUP{i}").status_code == 405
    metrics = client.get("/metrics").text
    assert "MADEUP" not in metrics
    assert 'method="OTHER"' in metrics
