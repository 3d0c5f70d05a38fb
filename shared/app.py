"""The app factory every service builds on.

``build_app`` wires, once: flask-smorest (OpenAPI 3 from the marshmallow
schemas at ``/openapi.json``), RFC 7807 problem documents for every error,
``X-Request-ID``, JSON logs, API-key auth, ``Idempotency-Key``, metrics and the
``/healthz`` ``/readyz`` ``/metrics`` endpoints. A service adds blueprints,
its domain errors and its readiness checks.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flask_smorest
from flask import Flask, Response, current_app, g, has_request_context, jsonify, request
from marshmallow import INCLUDE, Schema, fields
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from shared import auth, idempotency
from shared.access_log import log_request
from shared.bus import EventPublisher
from shared.config import Settings
from shared.errors import PROBLEM_BASE, PROBLEM_MIMETYPE, ProblemError, ServiceUnavailable
from shared.events import STREAMS
from shared.form_bodies import BODY_LOCATIONS, takes_form
from shared.json_bodies import OrjsonProvider, loads_json
from shared.logs import configure_logging, request_id_var
from shared.metrics import Metrics
from shared.openapi import ContractPlugin, register_problem_responses, standalone
from shared.redis_conn import connect

log = logging.getLogger("sb.http")

ErrorMap = Mapping[type[BaseException], tuple[int, str]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")


@dataclass
class ServiceContext:
    settings: Settings
    redis: Any
    metrics: Metrics
    publisher: EventPublisher
    extras: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.extras[name]


def ctx() -> ServiceContext:
    """The running app's ServiceContext (inside a request or app context)."""
    service: ServiceContext = current_app.extensions["sb"]
    return service


# -- problem documents ---------------------------------------------------------
def problem_response(problem: ProblemError) -> Response:
    response = jsonify(problem.to_dict())
    response.status_code = problem.status
    response.mimetype = PROBLEM_MIMETYPE
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def described_problem(error: BaseException) -> ProblemError | None:
    """The problem document an error describes itself with, or None.

    A service's error tree stays free of Flask and of this module (its domain is pure): a
    class says how it is answered with plain class attributes, ``status`` (int) and
    ``slug`` (the problem type's last part), optionally ``title``; an instance may carry
    ``retry_after`` (seconds, also sent as ``Retry-After``), ``headers`` and ``extra``
    (more members of the document). One handler in ``build_app`` reads them for every
    service, so no service keeps its own error map. ``detail``: the public text when the
    message must stay diagnostic (logs); ``relocate(path)``: a moved resource's new path
    for this request's path (sent as ``Location`` and ``location``, query string kept).
    """
    status = getattr(type(error), "status", None)
    slug = getattr(type(error), "slug", None)
    if not isinstance(status, int) or isinstance(status, bool) or not isinstance(slug, str):
        return None
    title = getattr(type(error), "title", None)
    if not isinstance(title, str):
        title = slug.replace("-", " ").title()
    headers = dict(getattr(error, "headers", None) or {})
    extra = dict(getattr(error, "extra", None) or {})
    retry = getattr(error, "retry_after", None)
    if isinstance(retry, int | float) and retry > 0:
        headers.setdefault("Retry-After", str(int(retry)))
        extra.setdefault("retry_after", int(retry))
    relocate = getattr(error, "relocate", None)
    if callable(relocate) and has_request_context():
        location = relocate(request.path)
        if request.query_string:
            location += "?" + request.query_string.decode("latin-1")
        headers["Location"] = location
        extra.setdefault("location", location)
    detail = getattr(error, "detail", None)
    return ProblemError(
        detail if isinstance(detail, str) and detail else str(error) or title,
        status=status,
        title=title,
        type=PROBLEM_BASE + slug,
        errors=getattr(error, "errors", None),
        headers=headers,
        extra=extra,
    )


def _flatten_messages(messages: Any) -> dict[str, Any]:
    """webargs nests messages by location; clients want field -> messages."""
    if not isinstance(messages, Mapping):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    locations = {"json", "query", "querystring", "form", "headers", "view_args", "path"}
    if set(messages) <= locations:
        flat: dict[str, Any] = {}
        for value in messages.values():
            if isinstance(value, Mapping):
                flat.update(value)
            else:
                flat.setdefault("_schema", []).extend(
                    value if isinstance(value, list) else [str(value)]
                )
        return flat
    return dict(messages)


def http_problem(error: HTTPException) -> ProblemError:
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    if code == 422 or (code == 400 and "messages" in data):
        errors = _flatten_messages(data.get("messages", {}))
        malformed = errors.get("_schema") == ["Invalid JSON body."]
        return ProblemError(
            "the request body is not valid JSON"
            if malformed
            else "the request does not match the schema",
            status=400,
            title="Malformed JSON" if malformed else "Validation Failed",
            type=PROBLEM_BASE + ("malformed-json" if malformed else "validation"),
            errors=None if malformed else errors,
        )
    headers = {}
    if code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    slug = (error.name or "error").lower().replace(" ", "-")
    return ProblemError(
        error.description if code < 500 else "the server could not handle the request",
        status=code,
        title=error.name,
        type=PROBLEM_BASE + slug,
        headers=headers,
    )


class ArgumentsParser(FlaskParser):
    """webargs reading JSON bodies with orjson: stdlib json was a tenth of a small request."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return webargs_core.missing
        data = req.get_data(cache=True)
        if not data:
            return webargs_core.missing
        try:
            return loads_json(data)
        except json.JSONDecodeError as exc:  # never "empty" here: webargs reads that as absent
            doc = data.decode(errors="replace") or "?"
            raise json.JSONDecodeError(str(exc), doc=doc, pos=0) from None


class Blueprint(flask_smorest.Blueprint):
    """The services' blueprint: flask-smorest's, with the faster arguments parser."""

    ARGUMENTS_PARSER = ArgumentsParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = BODY_LOCATIONS  # with json_or_form
    ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS = 400  # what http_problem answers (not 422)


class ProblemSchema(Schema):
    """RFC 7807 problem document; every operation documents it as its default error."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "field -> messages, for validation errors"})

    class Meta:
        unknown = INCLUDE  # problems may carry extension members (RFC 7807 section 3.2)


class _Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        """Error responses are documented as application/problem+json, with headers."""
        register_problem_responses(self.spec, self.ERROR_SCHEMA)

    def handle_http_exception(self, error: HTTPException) -> Response:
        return problem_response(http_problem(error))


# -- health ----------------------------------------------------------------------
class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadySchema(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


def _ops_blueprint() -> flask_smorest.Blueprint:
    blp = Blueprint("ops", __name__, description="Health and metrics")

    @blp.route("/healthz")
    @blp.response(200, HealthSchema)
    @blp.doc(security=[])
    @standalone
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @blp.route("/readyz")
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=ReadySchema, description="A dependency is unreachable")
    @blp.doc(security=[])
    def readyz() -> Any:
        """Redis and the service's other dependencies answer."""
        service = ctx()
        checks: dict[str, Callable[[], Any]] = {"redis": service.redis.ping}
        checks.update(service.extras.get("readiness", {}))
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        body = {"status": "ready" if ready else "unavailable", "checks": results}
        return body, (200 if ready else 503)

    @blp.route("/metrics")
    @blp.response(200, content_type="text/plain", description="Prometheus text format")
    @blp.doc(security=[])
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(ctx().metrics.render(), mimetype="text/plain; version=0.0.4")

    return blp


class _Flask(Flask):
    """Flask that remembers which views and hooks are synchronous: asking ``inspect``
    again for each of them on every request was a tenth of a trivial request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sb_sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sb_sync[func]
        except KeyError:
            wrapped = self._sb_sync[func] = super().ensure_sync(func)
            return wrapped
        except TypeError:  # an unhashable callable: ask every time
            return super().ensure_sync(func)


# -- request hooks ---------------------------------------------------------------
def _begin_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.sb_request_id = rid
    g.sb_token = request_id_var.set(rid)
    g.sb_started = time.perf_counter()
    if request.method in ("POST", "PUT", "PATCH") and (request.content_length or 0) > 0:
        mimetype = request.mimetype or ""
        json_body = mimetype == "application/json" or mimetype.endswith("+json")
        if not json_body and not takes_form():
            raise ProblemError(
                "send the body as application/json",
                status=415,
                title="Unsupported Media Type",
                type=PROBLEM_BASE + "unsupported-media-type",
            )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _finish_request(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("sb_request_id", "")
    started = g.get("sb_started")
    if started is not None:
        elapsed = time.perf_counter() - started
        endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
        # Any token is a method to HTTP: unknown ones share a label, or anyone could grow
        # the series (and this process's memory) one made-up method at a time.
        method = request.method if request.method in _METHODS else "OTHER"
        ctx().metrics.observe_request(method, endpoint, response.status_code, elapsed)
        log_request(method, endpoint, response.status_code, elapsed)
    return response


def _end_request(exc: BaseException | None) -> None:
    token = g.pop("sb_token", None)
    if token is not None:
        request_id_var.reset(token)


# -- the factory -----------------------------------------------------------------
def build_app(
    settings: Settings,
    *,
    title: str,
    blueprints: Iterable[flask_smorest.Blueprint] = (),
    error_map: ErrorMap | None = None,
    readiness: Mapping[str, Callable[[], Any]] | None = None,
    extensions: Mapping[str, Any] | None = None,
    redis: Any = None,
    description: str | None = None,
) -> Flask:
    configure_logging(settings.service, settings.log_level)
    app = _Flask(f"switchboard.{settings.service}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_SPEC_OPTIONS={
            "info": {"description": description or title},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "API key"}
                }
            },
            "security": [{"bearerAuth": []}],
        },
    )
    app.json = OrjsonProvider(app)
    client = redis if redis is not None else connect(settings)
    metrics = Metrics(settings.service, client)
    stream = STREAMS.get(settings.service, f"sb:events:{settings.service}")
    extras = dict(extensions or {})
    extras["readiness"] = dict(readiness or {})
    metrics.watch_readiness(lambda: {"redis": client.ping, **extras["readiness"]})
    app.extensions["sb"] = ServiceContext(
        settings=settings,
        redis=client,
        metrics=metrics,
        publisher=EventPublisher(client, stream, settings.stream_maxlen),
        extras=extras,
    )

    app.before_request(_begin_request)
    auth.install(app, settings)
    idempotency.install(app)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)

    api = _Api(app, spec_kwargs={"extra_plugins": [ContractPlugin(app)]})
    api.register_blueprint(_ops_blueprint())
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.extensions["sb_api"] = api

    @app.errorhandler(ProblemError)
    def _problem(error: ProblemError) -> Response:
        return problem_response(error)

    mapped = dict(error_map or {})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return problem_response(http_problem(error))
        described = described_problem(error)
        if described is not None:
            return problem_response(described)
        for cls in type(error).__mro__:
            if cls in mapped:
                status, title = mapped[cls]
                return problem_response(
                    ProblemError(
                        str(error) or title,
                        status=status,
                        title=title,
                        type=PROBLEM_BASE + re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower(),
                    )
                )
        if _is_redis_down(error):
            log.error("dependency unavailable", extra={"error": type(error).__name__})
            return problem_response(
                ServiceUnavailable("a backing service is unavailable", headers={"Retry-After": "1"})
            )
        log.exception("unhandled error")
        return problem_response(ProblemError("the server could not handle the request"))

    return app


def _is_redis_down(error: Exception) -> bool:
    import redis

    return isinstance(error, redis.ConnectionError | redis.TimeoutError)
