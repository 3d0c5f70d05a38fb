"""What every service's OpenAPI document says beyond the schemas (API.md A, "OpenAPI tells
the truth"), derived once from how the kernel answers, so a new route is covered with no
declaration of its own:

- ``operationId``: the view function's name in camelCase (``list_tiers`` -> ``listTiers``),
  unless the route sets one (``@blp.doc(operationId=...)``); a name two blueprints share
  is prefixed with the blueprint's.
- the statuses the kernel itself answers: 400 for any input (never flask-smorest's 422:
  validation answers 400), 401/403 where ``require_scope`` guards the view, 404 where the
  path names a resource, 409 (``Idempotency-Key`` reuse) on a scoped POST, 413 and 415 on
  POST/PUT/PATCH, 503 (a backing service down) everywhere but ``/healthz``. What only a
  route knows (423 on a check, 429 on a throttled send) it declares with ``answers``.
- headers: ``X-Request-ID`` on every request and response, ``Idempotency-Key`` on every
  scoped POST, ``Retry-After`` on 429/503, ``Location`` on 308, ``WWW-Authenticate`` on 401.
- ``security: []`` on views no scope guards (they take no API key).
- no ``default`` response: a client, and schemathesis' status check, see the statuses an
  operation really answers.
"""

from __future__ import annotations

import http
import re
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from apispec import APISpec, BasePlugin
from flask import Flask
from flask_smorest.utils import prepare_response
from marshmallow import Schema

from shared.errors import PROBLEM_MIMETYPE

F = TypeVar("F", bound=Callable[..., Any])

REQUEST_ID = "X-Request-ID"
IDEMPOTENCY_KEY = "Idempotency-Key"
RETRY_AFTER = "Retry-After"
WWW_AUTHENTICATE = "WWW-Authenticate"
LOCATION = "Location"
_WITH_BODY = frozenset({"post", "put", "patch"})
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def answers(*statuses: int) -> Callable[[F], F]:
    """Declare statuses only this route answers (``@answers(423)``), as problem documents."""
    responses = {status: http.HTTPStatus(status).name for status in statuses}
    decorate: Callable[[F], F] = flask_smorest.Blueprint.doc(responses=responses)
    return decorate


def standalone(view: F) -> F:
    """Mark a view that needs no backing service (no 503 is documented for it)."""
    view._sb_standalone = True  # type: ignore[attr-defined]
    return view


def camel(name: str) -> str:
    head, *rest = [part for part in name.split("_") if part]
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def register_problem_responses(spec: APISpec, schema: type[Schema]) -> None:
    """One component per HTTP status: errors as ``application/problem+json`` with their
    headers (flask-smorest registers them lazily: only the referenced ones appear)."""
    spec.components.header(
        REQUEST_ID,
        {
            "description": "the request's id: echoed when the request sent a valid one, "
            "else generated; it is in every log line and event of the request",
            "schema": {"type": "string"},
        },
    )
    spec.components.header(
        RETRY_AFTER,
        {"description": "seconds to wait before trying again", "schema": {"type": "integer"}},
    )
    spec.components.header(
        WWW_AUTHENTICATE,
        {"description": "the authentication scheme expected", "schema": {"type": "string"}},
    )
    spec.components.header(
        LOCATION,
        {"description": "where the resource now is", "schema": {"type": "string"}},
    )
    spec.components.parameter(
        REQUEST_ID,
        "header",
        {
            "required": False,
            "description": "an id for this request (kept when valid, else one is generated)",
            "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
        },
    )
    spec.components.parameter(
        IDEMPOTENCY_KEY,
        "header",
        {
            "required": False,
            "description": "the same key with the same request replays the first answer "
            "and does nothing twice; with another request it is 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
    )
    for status in http.HTTPStatus:
        response: dict[str, Any] = {"description": status.phrase}
        if not (100 <= status < 200) and status not in (204, 304):
            response["schema"] = schema
        # A redirect is a problem document too (shared.errors.PermanentRedirect).
        content_type = PROBLEM_MIMETYPE if status >= 300 else "application/json"
        prepare_response(response, spec, content_type)
        headers: dict[str, Any] = {REQUEST_ID: REQUEST_ID}
        if status in (429, 503):
            headers[RETRY_AFTER] = RETRY_AFTER
        if 300 <= status < 400:
            headers[LOCATION] = LOCATION
        if status == 401:
            headers[WWW_AUTHENTICATE] = WWW_AUTHENTICATE
        response["headers"] = headers
        spec.components.response(status.name, response, lazy=True)


class ContractPlugin(BasePlugin):
    """The apispec plugin that completes each operation as the module docstring says."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen: set[str] = set()

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint)
        scoped = getattr(view, "_sb_scopes", None) is not None
        blueprint, _, function = rule.endpoint.rpartition(".")
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            self._name(operation, blueprint, function)
            responses: dict[Any, Any] = operation.setdefault("responses", {})
            responses.pop("default", None)
            if responses.pop(422, None) is not None or responses.pop("422", None) is not None:
                responses.setdefault(400, "BAD_REQUEST")
            statuses: set[int] = set()
            takes_input = bool(rule.arguments) or "requestBody" in operation
            takes_input |= any(
                isinstance(p, dict) and p.get("in") in ("query", "header")
                for p in operation.get("parameters", [])
            )
            if method in _WITH_BODY:
                statuses |= {400, 413, 415}
            if method == "post":
                statuses.add(400)  # a malformed Idempotency-Key, whoever sends it
                if scoped:  # keys are remembered per client: no client, no replay
                    statuses.add(409)
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
            if takes_input:
                statuses.add(400)
            if scoped:
                statuses |= {401, 403}
            else:
                operation["security"] = []
            if rule.arguments:
                statuses.add(404)
            if not getattr(view, "_sb_standalone", False):
                statuses.add(503)
            for status in statuses:
                if status not in responses and str(status) not in responses:
                    responses[status] = http.HTTPStatus(status).name
            for response in responses.values():
                if isinstance(response, dict):
                    response.setdefault("headers", {}).setdefault(REQUEST_ID, REQUEST_ID)
            operation.setdefault("parameters", []).append(REQUEST_ID)
            operation["responses"] = dict(sorted(responses.items(), key=lambda i: str(i[0])))

    def _name(self, operation: dict[str, Any], blueprint: str, function: str) -> None:
        name = operation.get("operationId") or camel(function)
        if name in self.seen:
            name = camel(re.sub(r"\W", "_", blueprint)) + name[:1].upper() + name[1:]
        self.seen.add(name)
        operation["operationId"] = name
