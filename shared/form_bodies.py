"""Operations that also take ``application/x-www-form-urlencoded`` bodies.

Every other body is JSON (the 415 of ``shared.app``); the OAuth endpoints take form
bodies too because RFC 7662 / RFC 7009 clients send nothing else (API.md A)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask import current_app, request
from marshmallow import Schema

F = TypeVar("F", bound=Callable[..., Any])

FORM = "application/x-www-form-urlencoded"
#: the ``location`` of ``blp.arguments`` that reads a JSON body, else a form one
JSON_OR_FORM = "json_or_form"
#: the body locations of the services' blueprints: the JSON body of ``json_or_form`` is
#: documented by flask-smorest, its form body by ``also_form``
BODY_LOCATIONS = {
    **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
    JSON_OR_FORM: "application/json",
}


def also_form(blp: Any, schema: Schema) -> Callable[[F], F]:
    """Put right under ``blp.route``: the view takes ``schema`` as a form body as well
    (parse it with ``blp.arguments(schema, location=JSON_OR_FORM)``), and the OpenAPI
    document says so beside the JSON body."""

    def decorate(view: F) -> F:
        view = blp.doc(requestBody={"content": {FORM: {"schema": schema}}})(view)
        view._sb_form = True  # type: ignore[attr-defined]  # read by takes_form()
        return view

    return decorate


def takes_form() -> bool:
    """Whether the request is a form body for a view that takes one."""
    if request.mimetype != FORM or request.endpoint is None:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "_sb_form", False))
