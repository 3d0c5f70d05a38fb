"""``Idempotency-Key`` for every POST (API.md "Common rules").

The first request with a key claims it in Redis (``SET NX``) together with a
fingerprint of method, path and body; its response is stored under the key
for ``IDEMPOTENCY_TTL_SECONDS``. A repeat with the same fingerprint replays
the stored response; with another fingerprint it is 409. A repeat that
arrives while the first is still running waits for it (bounded), so
concurrent duplicates execute once. Responses that say nothing final - 401,
403, 429 and 5xx - are not stored, so the client may retry them.

Nothing is kept in clear: a response may carry a secret (a TOTP enrollment)
or personal data (a profile), so status, headers and body are sealed with
AES-GCM under a key derived (HKDF) from ``SB_INTERNAL_API_KEY``, and the
fingerprint is an HMAC under another derived key. A record that does not open
(the key was rotated, the record is damaged) counts as absent.

Each stored record is indexed under the customers it concerns (the URL's path
parameters and the top-level ``id`` / ``profile_id`` / ``customer_id`` of the
request and response bodies) in ``sb:idem:subject:<id>``; erasure calls
``forget`` so no copy of the customer outlives the erasure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from shared.auth import authenticate
from shared.errors import BadRequest, Conflict, ProblemError
from shared.sealing import Sealer, derive

HEADER = "Idempotency-Key"
PENDING_TTL = 60  # a claim outlives no crashed request by more than this
WAIT_SECONDS = 10.0
NOT_STORED = {401, 403, 429}
REPLAYED_HEADERS = ("Content-Type", "Location", "Retry-After")
KEY_SECRET = "SB_INTERNAL_API_KEY"  # the secret every service already holds
SUBJECT_FIELDS = ("id", "profile_id", "customer_id")
SUBJECT_PREFIX = "sb:idem:subject:"

# Release the claim only if it is still ours (a slow request's claim may have
# expired and been taken by another).
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Delete a record only if it is still the one we could not open.
_DROP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Keys:
    """The keys derived from one service secret: AES-GCM for records, HMAC for fingerprints."""

    def __init__(self, secret: str) -> None:
        self.sealer = Sealer([secret], b"sb:idempotency:aes-gcm:v1")
        self.mac = derive(secret, b"sb:idempotency:fingerprint:v1")

    def seal(self, key: str, data: dict[str, Any]) -> str:
        return self.sealer.seal(json.dumps(data).encode(), key.encode())

    def open(self, key: str, sealed: Any) -> dict[str, Any] | None:
        """The record sealed under ``key``, or None when it does not open."""
        opened = self.sealer.open(str(sealed), key.encode())
        try:
            data = json.loads(opened) if opened is not None else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def fingerprint(self, *parts: bytes) -> str:
        return hmac.new(self.mac, b"\0".join(parts), hashlib.sha256).hexdigest()


def install(app: Flask) -> None:
    # Derived now: outside dev mode a missing secret stops the service at start.
    app.extensions["sb_idem_keys"] = Keys(app.extensions["sb"].settings.secret(KEY_SECRET))
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)


def _ctx() -> Any:
    from flask import current_app

    return current_app.extensions["sb"]


def _keys() -> Keys:
    from flask import current_app

    keys: Keys = current_app.extensions["sb_idem_keys"]
    return keys


def forget(redis: Any, subject_id: str) -> int:
    """Delete every idempotency record that concerns ``subject_id``; returns how many."""
    index = SUBJECT_PREFIX + subject_id
    members = redis.smembers(index)
    deleted = 0
    for member in members:  # one by one: on a cluster they live in other slots
        deleted += int(redis.delete(member.decode() if isinstance(member, bytes) else member))
    redis.delete(index)
    return deleted


def _subjects(response: Response) -> set[str]:
    found: set[str] = set()
    for value in (request.view_args or {}).values():
        if isinstance(value, str) and value:
            found.add(value)
    bodies: list[Any] = [request.get_json(silent=True)]
    if response.is_json:
        bodies.append(response.get_json(silent=True))
    for body in bodies:
        if isinstance(body, dict):
            for name in SUBJECT_FIELDS:
                value = body.get(name)
                if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                    found.add(str(value))
    return found


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
    keys = _keys()
    fingerprint = keys.fingerprint(
        request.method.encode(), request.full_path.encode(), request.get_data(cache=True)
    )
    token = uuid.uuid4().hex
    claim = json.dumps({"state": "pending", "fp": fingerprint, "token": token})
    redis = ctx.redis
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if redis.set(key, claim, nx=True, ex=PENDING_TTL):
            g.sb_idem = (key, token, fingerprint)
            return None
        raw = redis.get(key)
        if raw is None:
            continue  # released or expired between the two calls: try to claim again
        stored = json.loads(raw)
        if stored["state"] == "done":
            opened = keys.open(key, stored.get("sealed"))
            if opened is None:  # key rotated or record damaged: as if it had expired
                redis.eval(_DROP, 1, key, raw)
                continue
            stored = opened
        if stored["fp"] != fingerprint:
            raise Conflict(
                "this Idempotency-Key was already used with a different request",
                extra={"idempotency_key": idem_key},
            )
        if "status" in stored:
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
    key, token, fingerprint = claim
    redis = _ctx().redis
    if response.status_code >= 500 or response.status_code in NOT_STORED:
        redis.eval(_RELEASE, 1, key, token)
        return response
    sealed = _keys().seal(
        key,
        {
            "fp": fingerprint,
            "status": response.status_code,
            "headers": {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
            "body": base64.b64encode(response.get_data()).decode(),
        },
    )
    ttl = _ctx().settings.idempotency_ttl
    # Indexed first: a record is never stored where erasure could not find it.
    for subject in _subjects(response):
        index = SUBJECT_PREFIX + subject
        redis.sadd(index, key)
        redis.expire(index, ttl)
    record = {"state": "done", "token": token, "sealed": sealed}
    redis.set(key, json.dumps(record), ex=ttl)
    return response


def _teardown(exc: BaseException | None) -> None:
    claim = g.pop("sb_idem", None)
    if claim is not None:  # after_request never ran: the request died
        try:
            _ctx().redis.eval(_RELEASE, 1, claim[0], claim[1])
        except Exception:  # noqa: BLE001 - the claim expires on its own
            pass
