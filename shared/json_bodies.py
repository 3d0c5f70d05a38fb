"""JSON in and out of every service: orjson, with the standard library for what it cannot.

Apart from the app factory (shared/app.py) because it is the one place that decides what
a body may hold: integers beyond 64 bits, NaN and lone surrogates.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_LONG_NUMBER = re.compile(rb"\d{19}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _refuse_surrogates(value: Any) -> None:
    pending = [value]  # iterative: as deep as the parser allowed, no deeper recursion
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError("a lone surrogate")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def loads_json(data: bytes) -> Any:
    """orjson, except for documents with integers beyond 64 bits: it reads those as floats.
    Any unreadable document raises ``json.JSONDecodeError`` (a ``ValueError``, so a 400):
    the standard library's own limits (nesting, 4,300-digit integers) included."""
    if not _LONG_NUMBER.search(data):
        return orjson.loads(data)  # its JSONDecodeError subclasses json's
    try:
        # What orjson refuses, refused here too: NaN and Infinity, which no strict
        # reader of our answers could parse, and "\ud800" escapes, lone surrogates
        # that neither UTF-8, Redis nor a database can take.
        value = json.loads(data, parse_constant=_not_json)
        _refuse_surrogates(value)
        return value
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        doc = data[:200].decode(errors="replace") or "?"
        raise json.JSONDecodeError(f"unreadable JSON: {type(exc).__name__}", doc, 0) from None


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON in and out through orjson: a few times faster on every request.

    orjson stops at 64-bit integers (it reads larger ones as floats and will not
    write them); those rare documents go through the standard library instead.
    """

    # Validation messages of list items are keyed by index: {"items": {0: [...]}}.
    OPTIONS = orjson.OPT_NON_STR_KEYS

    def _bytes(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=self.OPTIONS)
        except TypeError:
            return json.dumps(obj, default=self.default, separators=(",", ":")).encode()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self._bytes(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_json(s.encode() if isinstance(s, str) else s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return Response(
            self._bytes(self._prepare_response_obj(args, kwargs)), mimetype=self.mimetype
        )
