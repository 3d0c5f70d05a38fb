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

A claim is a lease of ``PENDING_TTL`` seconds, renewed every third of it while
its request runs (``Leases``), so a request slower than the lease - an export,
an erasure waiting on its peers - is never run a second time by a retry; a
crashed process stops renewing and its claim expires. The response is stored
only where the claim is still this request's own: if the lease was lost anyway
(the process stalled for a whole lease, Redis failed over), the request that
took the key over is not overwritten and the loss is logged.

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
import logging
import os
import threading
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from shared.auth import app_keys, authenticate
from shared.errors import BadRequest, Conflict, ProblemError
from shared.lua import script
from shared.sealing import Sealer, derive

HEADER = "Idempotency-Key"
PENDING_TTL = 60.0  # a claim outlives no crashed request by more than this
WAIT_SECONDS = 10.0
NOT_STORED = {401, 403, 429}
REPLAYED_HEADERS = ("Content-Type", "Location", "Retry-After")
KEY_SECRET = "SB_INTERNAL_API_KEY"  # the secret every service already holds
# Who a stored response is about, wherever it names them: a merge's answer names its
# source, an unmerge's holds both profiles nested (erasing either must forget it).
SUBJECT_FIELDS = ("id", "profile_id", "customer_id", "source_id", "survivor_id")
SUBJECT_DEPTH = 3
SUBJECT_PREFIX = "sb:idem:subject:"

# The claim's scripts: each acts only while the claim is still ours (shared/lua/*.lua).
_RELEASE = script("idempotency_release")
_RENEW = script("idempotency_renew")
_STORE = script("idempotency_store")
_DROP = script("idempotency_drop")


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


log = logging.getLogger("sb.idempotency")


class Leases:
    """The claims of this process's running requests, renewed in Redis every third of
    ``ttl`` until released. One thread per app, alive only while it holds claims."""

    def __init__(self, ttl: float = PENDING_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], Any] = {}  # (key, token) -> redis client
        self._runner: threading.Thread | None = None
        self._pid = 0

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def hold(self, redis: Any, key: str, token: str) -> None:
        with self._lock:
            self._held[(key, token)] = redis
            # A forked child inherits the dict but not the thread.
            if self._runner is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._runner = threading.Thread(
                    target=self._renew, name="sb-idempotency-leases", daemon=True
                )
                self._runner.start()

    def release(self, key: str, token: str) -> None:
        with self._lock:
            self._held.pop((key, token), None)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def _renew(self) -> None:
        while True:
            time.sleep(self.ttl / 3)
            with self._lock:
                if not self._held:
                    self._runner = None
                    return
                held = list(self._held.items())
            for (key, token), redis in held:
                try:
                    redis.eval(_RENEW, 1, key, token, self.ttl_ms)
                except Exception as exc:  # noqa: BLE001 - the next pass tries again
                    log.warning(
                        "could not renew an idempotency claim", extra={"error": type(exc).__name__}
                    )


def install(app: Flask) -> None:
    # Derived now: outside dev mode a missing secret stops the service at start.
    app.extensions["sb_idem_keys"] = Keys(app.extensions["sb"].settings.secret(KEY_SECRET))
    app.extensions["sb_idem_leases"] = Leases()
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


def _leases() -> Leases:
    from flask import current_app

    leases: Leases = current_app.extensions["sb_idem_leases"]
    return leases


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
        _collect_subjects(body, found, SUBJECT_DEPTH)
    return found


def _collect_subjects(body: Any, found: set[str], depth: int) -> None:
    if depth <= 0:
        return
    if isinstance(body, list):
        for item in body:
            _collect_subjects(item, found, depth - 1)
        return
    if not isinstance(body, dict):
        return
    for name in SUBJECT_FIELDS:
        value = body.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            found.add(str(value))
    for value in body.values():
        if isinstance(value, dict | list):
            _collect_subjects(value, found, depth - 1)


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
        client = authenticate(app_keys(), request.headers.get("Authorization"))
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
    leases = _leases()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if redis.set(key, claim, nx=True, px=leases.ttl_ms):
            g.sb_idem = (key, token, fingerprint)
            leases.hold(redis, key, token)
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
    _leases().release(key, token)
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
    if not redis.eval(_STORE, 1, key, token, json.dumps(record), ttl):
        # Another request holds the key: this one ran although a retry may have too.
        log.warning("idempotency claim lost before the response was stored; not stored")
    return response


def _teardown(exc: BaseException | None) -> None:
    claim = g.pop("sb_idem", None)
    if claim is not None:  # after_request never ran: the request died
        _leases().release(claim[0], claim[1])
        try:
            _ctx().redis.eval(_RELEASE, 1, claim[0], claim[1])
        except Exception:  # noqa: BLE001 - the claim expires on its own
            pass
