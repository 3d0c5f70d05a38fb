"""``Idempotency-Key`` for every POST (API.md "Common rules").

The first request with a key claims it in Redis (``SET NX``) together with a
fingerprint of method, path and body; its response is stored under the key
for ``IDEMPOTENCY_TTL_SECONDS``. A repeat with the same fingerprint replays
the stored response; with another fingerprint it is 409. A repeat that
arrives while the first is still running waits for it (bounded), so
concurrent duplicates execute once. Responses that say nothing final - 401,
403, 429 and 5xx - are not stored, so the client may retry them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from shared.auth import authenticate
from shared.errors import BadRequest, Conflict, ProblemError

HEADER = "Idempotency-Key"
PENDING_TTL = 60  # a claim outlives no crashed request by more than this
WAIT_SECONDS = 10.0
NOT_STORED = {401, 403, 429}
REPLAYED_HEADERS = ("Content-Type", "Location", "Retry-After")

# Release the claim only if it is still ours (a slow request's claim may have
# expired and been taken by another).
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def install(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)


def _ctx() -> Any:
    from flask import current_app

    return current_app.extensions["sb"]


def _before() -> Response | None:
    if request.method != "POST":
        return None
    idem_key = request.headers.get(HEADER)
    if idem_key is None:
        return None
    if not (1 <= len(idem_key) <= 255) or not idem_key.isprintable():
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 printable characters",
            errors={HEADER: ["Invalid value."]},
        )
    ctx = _ctx()
    try:
        client = authenticate(ctx.settings.api_keys, request.headers.get("Authorization"))
    except ProblemError:
        return None  # the view answers 401; nothing to remember
    g.sb_client = client
    digest = hashlib.sha256(idem_key.encode()).hexdigest()
    key = f"sb:idem:{ctx.settings.service}:{client.client}:{digest}"
    fingerprint = hashlib.sha256(
        b"\0".join(
            [request.method.encode(), request.full_path.encode(), request.get_data(cache=True)]
        )
    ).hexdigest()
    token = uuid.uuid4().hex
    claim = json.dumps({"state": "pending", "fp": fingerprint, "token": token})
    redis = ctx.redis
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if redis.set(key, claim, nx=True, ex=PENDING_TTL):
            g.sb_idem = (key, token)
            return None
        raw = redis.get(key)
        if raw is None:
            continue  # released or expired between the two calls: try to claim again
        stored = json.loads(raw)
        if stored["fp"] != fingerprint:
            raise Conflict(
                "this Idempotency-Key was already used with a different request",
                extra={"idempotency_key": idem_key},
            )
        if stored["state"] == "done":
            return _replay(stored)
        if time.monotonic() >= deadline:
            raise Conflict("a request with this Idempotency-Key is still in progress")
        time.sleep(0.01)


def _replay(stored: dict[str, Any]) -> Response:
    response = Response(
        base64.b64decode(stored["body"]), status=stored["status"], headers=stored["headers"]
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _after(response: Response) -> Response:
    claim = g.pop("sb_idem", None)
    if claim is None:
        return response
    key, token = claim
    redis = _ctx().redis
    if response.status_code >= 500 or response.status_code in NOT_STORED:
        redis.eval(_RELEASE, 1, key, token)
        return response
    fingerprint = json.loads(redis.get(key) or "{}").get("fp")
    record = {
        "state": "done",
        "fp": fingerprint,
        "token": token,
        "status": response.status_code,
        "headers": {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
        "body": base64.b64encode(response.get_data()).decode(),
    }
    redis.set(key, json.dumps(record), ex=_ctx().settings.idempotency_ttl)
    return response


def _teardown(exc: BaseException | None) -> None:
    claim = g.pop("sb_idem", None)
    if claim is not None:  # after_request never ran: the request died
        try:
            _ctx().redis.eval(_RELEASE, 1, claim[0], claim[1])
        except Exception:  # noqa: BLE001 - the claim expires on its own
            pass
