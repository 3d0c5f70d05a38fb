"""The CRM's HTTP API in-process (Flask test client) on a real database and Redis."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.crm.app import create_app
from shared.config import Settings
from shared.events import Event
from shared.testing import free_port

Headers = Callable[[str], dict[str, str]]
PHONE = {"type": "phone", "value": "+86 138 0013 8000"}


def make_profile(client: FlaskClient, headers: Headers, **body: Any) -> dict[str, Any]:
    body.setdefault("identifiers", [PHONE])
    response = client.post("/v1/profiles", json=body, headers=headers("channel"))
    assert response.status_code == 201, response.json
    return response.json


def refund_case_number(client: FlaskClient, headers: Headers) -> str:
    """The number of a case a new customer (phone 13800138000) opens on chat."""
    profile = make_profile(client, headers)
    case = client.post(
        "/v1/cases",
        json={"profile_id": profile["id"], "channel": "chat", "subject": "refund"},
        headers=headers("channel"),
    )
    assert case.status_code == 201, case.json
    return str(case.json["case_number"])


def test_resolve_creates_then_finds_with_200(client: FlaskClient, headers: Headers) -> None:
    body = {"identifiers": [{"type": "phone", "value": "13800138000"}], "create": True}
    created = client.post("/v1/profiles/resolve", json=body, headers=headers("channel"))
    found = client.post(
        "/v1/profiles/resolve",
        json={"identifiers": [{"type": "phone", "value": "(+86)138 0013 8000"}]},
        headers=headers("channel"),
    )
    assert created.status_code == 201 and found.status_code == 200
    assert found.json["id"] == created.json["id"]
    assert created.headers["Location"] == f"/v1/profiles/{created.json['id']}"
    again = client.get(created.headers["Location"], headers=headers("channel"))
    assert again.status_code == 200


def test_junk_and_unknown_fields_are_400_problems(client: FlaskClient, headers: Headers) -> None:
    junk = client.post(
        "/v1/profiles",
        json={"identifiers": [{"type": "email", "value": "null"}]},
        headers=headers("channel"),
    )
    assert junk.status_code == 400 and junk.mimetype == "application/problem+json"
    assert "identifiers" in junk.json["errors"]
    unknown = client.post("/v1/profiles", json={"nick": "x"}, headers=headers("channel"))
    assert unknown.status_code == 400 and "nick" in unknown.json["errors"]


def test_a_resolve_naming_two_profiles_is_409_with_both_ids(
    client: FlaskClient, headers: Headers
) -> None:
    a = make_profile(client, headers)
    b = make_profile(client, headers, identifiers=[{"type": "email", "value": "b@example.com"}])
    both = {"identifiers": [PHONE, {"type": "email", "value": "B@example.com"}], "create": True}
    response = client.post("/v1/profiles/resolve", json=both, headers=headers("channel"))
    assert response.status_code == 409
    assert sorted(response.json["profile_ids"]) == sorted([a["id"], b["id"]])
    candidates = client.get("/v1/merge-candidates", headers=headers("agent")).json["items"]
    assert sorted(candidates[0]["profile_ids"]) == sorted([a["id"], b["id"]])


def test_scopes_are_enforced(client: FlaskClient, headers: Headers) -> None:
    assert client.get("/v1/profiles").status_code == 401
    assert client.delete("/v1/profiles/p-1", headers=headers("channel")).status_code == 403


def test_merge_dry_run_then_merge_then_308_then_unmerge(
    client: FlaskClient, headers: Headers
) -> None:
    survivor = make_profile(client, headers, name="Li Wei")
    source = make_profile(
        client, headers, name="Wei", identifiers=[{"type": "email", "value": "w@example.com"}]
    )
    url = f"/v1/profiles/{survivor['id']}/merge"
    preview = client.post(
        url, json={"source_id": source["id"], "dry_run": True}, headers=headers("agent")
    )
    assert preview.status_code == 200 and preview.json["dry_run"] is True
    assert client.get(f"/v1/profiles/{source['id']}", headers=headers("agent")).status_code == 200
    merged = client.post(url, json={"source_id": source["id"]}, headers=headers("agent"))
    assert merged.status_code == 200
    moved = client.get(f"/v1/profiles/{source['id']}/timeline?limit=5", headers=headers("agent"))
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"/v1/profiles/{survivor['id']}/timeline?limit=5"
    undo = client.post(
        f"/v1/profiles/{survivor['id']}/unmerge",
        json={"merge_id": merged.json["merge_id"]},
        headers=headers("admin"),
    )
    assert undo.status_code == 200 and undo.json["source"]["name"] == "Wei"
    assert client.get(f"/v1/profiles/{source['id']}", headers=headers("agent")).status_code == 200


def test_unmerging_a_survivor_merged_again_since_is_409_naming_the_later_merge(
    client: FlaskClient, headers: Headers
) -> None:
    first = make_profile(client, headers, name="A")
    second = make_profile(client, headers, identifiers=[{"type": "app_user_id", "value": "b"}])
    third = make_profile(client, headers, identifiers=[{"type": "app_user_id", "value": "c"}])

    def merge(survivor: str, source: str) -> str:
        response = client.post(
            f"/v1/profiles/{survivor}/merge", json={"source_id": source}, headers=headers("agent")
        )
        assert response.status_code == 200, response.json
        return str(response.json["merge_id"])

    def unmerge(survivor: str, merge_id: str) -> Any:
        return client.post(
            f"/v1/profiles/{survivor}/unmerge",
            json={"merge_id": merge_id},
            headers=headers("agent"),
        )

    earlier = merge(second["id"], first["id"])
    later = merge(third["id"], second["id"])
    refused = unmerge(second["id"], earlier)
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert refused.json["type"].endswith("/merge-refused")
    assert later in refused.json["detail"] and third["id"] in refused.json["detail"]
    assert sorted(refused.json["profile_ids"]) == sorted([second["id"], third["id"]])
    # Nothing moved: the first customer is still a tombstone of the second.
    assert client.get(f"/v1/profiles/{first['id']}", headers=headers("agent")).status_code == 308
    # In the order the answer gives, both merges come undone.
    assert unmerge(third["id"], later).status_code == 200
    assert unmerge(second["id"], earlier).status_code == 200
    assert client.get(f"/v1/profiles/{first['id']}", headers=headers("agent")).status_code == 200


def test_search_is_paginated_with_a_cursor(client: FlaskClient, headers: Headers) -> None:
    for i in range(5):
        make_profile(
            client,
            headers,
            name=f"Zhang {i}",
            identifiers=[{"type": "app_user_id", "value": f"u{i}"}],
        )
    seen: list[str] = []
    cursor = ""
    while True:
        page = client.get(
            f"/v1/profiles?q=zhang&limit=2&cursor={cursor}", headers=headers("agent")
        ).json
        seen += [p["id"] for p in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 5 == len(set(seen))
    bad = client.get("/v1/profiles?cursor=bm9wZQ", headers=headers("agent"))
    assert bad.status_code == 400


def test_cases_merge_on_another_channel_and_follow_the_workflow(
    client: FlaskClient, headers: Headers
) -> None:
    profile = make_profile(client, headers, tier="gold")
    body = {"profile_id": profile["id"], "channel": "chat", "subject": "快递还没到"}
    first = client.post("/v1/cases", json=body, headers=headers("channel"))
    assert first.status_code == 201
    assert first.json["case_number"].startswith("C-") and first.json["merged"] is False
    assert first.json["category"] == "logistics_complaint"
    second = client.post("/v1/cases", json={**body, "channel": "voice"}, headers=headers("channel"))
    assert second.status_code == 200 and second.json["merged"] is True
    assert second.json["id"] == first.json["id"]
    url = f"/v1/cases/{first.json['id']}"
    bad = client.patch(url, json={"status": "closed"}, headers=headers("agent"))
    assert bad.status_code == 409
    ok = client.patch(url, json={"status": "open"}, headers=headers("agent"))
    assert ok.status_code == 200 and ok.json["status"] == "open"
    items = client.get(f"/v1/profiles/{profile['id']}/timeline", headers=headers("agent")).json[
        "items"
    ]
    assert [i["kind"] for i in items][:3] == ["case.updated", "case.contact_added", "case.created"]


def test_lookup_answers_only_with_both_parts_and_is_rate_limited(
    make_settings: Callable[..., Settings], empty_db_url: str, headers: Headers
) -> None:
    app = create_app(
        make_settings("crm", DATABASE_URL=empty_db_url, CRM_LOOKUP_LIMIT_PER_MINUTE="4")
    )
    client = app.test_client()
    number = refund_case_number(client, headers)
    good = client.get(
        f"/v1/cases/lookup?case_number={number}&phone=13800138000", headers=headers("channel")
    )
    assert good.status_code == 200 and set(good.json) == {
        "status",
        "category",
        "updated_at",
    }
    wrong_phone = client.get(
        f"/v1/cases/lookup?case_number={number}&phone=13900000000", headers=headers("channel")
    )
    wrong_number = client.get(
        "/v1/cases/lookup?case_number=C-2026-999999&phone=13800138000", headers=headers("channel")
    )
    assert wrong_phone.status_code == wrong_number.status_code == 404
    assert wrong_phone.json == wrong_number.json
    client.get(f"/v1/cases/lookup?case_number={number}&phone=1", headers=headers("channel"))
    limited = client.get(
        f"/v1/cases/lookup?case_number={number}&phone=13800138000", headers=headers("channel")
    )
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    other_client = client.get(
        f"/v1/cases/lookup?case_number={number}&phone=13800138000", headers=headers("all")
    )
    assert other_client.status_code == 200
    app.extensions["sb"]["store"].dispose()


def test_lookup_budgets_are_per_caller_when_the_channel_names_one(
    make_settings: Callable[..., Settings], empty_db_url: str, headers: Headers, redis: Any
) -> None:
    # An IVR serves every caller through one API key: one budget for all of them would
    # turn callers away after the tenth lookup of the minute.
    app = create_app(
        make_settings(
            "crm",
            DATABASE_URL=empty_db_url,
            CRM_LOOKUP_LIMIT_PER_MINUTE="2",
            CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE="5",
        )
    )
    client = app.test_client()
    number = refund_case_number(client, headers)

    def lookup(caller: str) -> int:
        url = f"/v1/cases/lookup?case_number={number}&phone=13800138000&caller={caller}"
        return client.get(url, headers=headers("channel")).status_code

    # Each caller has 2; the API client 5 over all of its callers.
    assert [lookup("+8613900000001") for _ in range(3)] == [200, 200, 429]
    assert [lookup("+8613900000002") for _ in range(2)] == [200, 200]
    assert [lookup(f"+861390000001{i}") for i in range(3)] == [200, 429, 429]
    # The caller's number is not kept in clear in Redis.
    keys = list(redis.scan_iter("sb:crm:rate:*"))
    assert keys and not [k for k in keys if "8613900000001" in k]
    app.extensions["sb"]["store"].dispose()


class _Peer(http.server.BaseHTTPRequestHandler):
    """A stand-in for the identity / routing export endpoints (contract shape)."""

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"customer_id": self.path.split("/")[3], "factors": [], "tasks": []})
        self.send_response(200 if self.headers.get("Authorization") else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def peer_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Peer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_export_gathers_every_service_and_refuses_to_be_incomplete(
    make_settings: Callable[..., Settings], empty_db_url: str, headers: Headers, peer_url: str
) -> None:
    app = create_app(
        make_settings("crm", DATABASE_URL=empty_db_url, IDENTITY_URL=peer_url, ROUTING_URL=peer_url)
    )
    client = app.test_client()
    profile = make_profile(client, headers, name="Li Wei")
    doc = client.get(f"/v1/profiles/{profile['id']}/export", headers=headers("admin"))
    assert doc.status_code == 200
    assert doc.json["format"] == "switchboard.crm.export/1"
    assert doc.json["identifiers"][0]["value"] == "+8613800138000"
    assert doc.json["services"]["identity"][profile["id"]]["customer_id"] == profile["id"]
    down = create_app(
        make_settings(
            "crm",
            DATABASE_URL=empty_db_url,
            ROUTING_URL=f"http://127.0.0.1:{free_port()}",
            IDENTITY_URL=peer_url,
        )
    )
    answer = down.test_client().get(
        f"/v1/profiles/{profile['id']}/export", headers=headers("admin")
    )
    assert answer.status_code == 503 and "routing" in answer.json["detail"]
    for a in (app, down):
        a.extensions["sb"]["store"].dispose()


def test_erase_removes_the_profile_and_publishes_erased(
    app: Flask, client: FlaskClient, headers: Headers, redis: Any
) -> None:
    from services.crm.adapters.sql_tables import outbox
    from shared.sql_outbox import relay_outbox

    profile = make_profile(client, headers)
    assert (
        client.delete(f"/v1/profiles/{profile['id']}", headers=headers("admin")).status_code == 204
    )
    assert client.get(f"/v1/profiles/{profile['id']}", headers=headers("admin")).status_code == 404
    relay_outbox(app.extensions["sb"]["engine"], outbox, redis, maxlen=1000)
    types = [Event.from_fields(f) for _, f in redis.xrange("sb:events:crm")]
    erased = [e for e in types if e.type == "crm.profile.erased"]
    assert [e.data for e in erased] == [{"profile_id": profile["id"]}]
    again = client.post(
        "/v1/profiles/resolve",
        json={"identifiers": [PHONE], "create": True},
        headers=headers("channel"),
    )
    # The explicit ask: a fresh profile, not the erased one back (issue 16, item 11).
    assert again.status_code == 201 and again.json["id"] != profile["id"]


def test_readyz_checks_the_database(client: FlaskClient) -> None:
    body = client.get("/readyz").json
    assert body["checks"]["database"] == "ok"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/profiles", {"name": "bad\u0000name"}),
        ("/v1/profiles", {"attributes": {"blob": "x" * 20000}}),
        ("/v1/profiles", {"tier": "Gold Tier!"}),
        ("/v1/profiles/resolve", {"identifiers": []}),
        ("/v1/profiles/resolve", {"identifiers": [{"type": "phone"}]}),
        (
            "/v1/interactions",
            {"profile_id": "p-1", "channel": "chat", "direction": "sideways", "summary": "x"},
        ),
        ("/v1/cases", {"profile_id": "p-1", "channel": "chat", "subject": ""}),
    ],
)
def test_malformed_bodies_are_400_with_the_field_named(
    client: FlaskClient, headers: Headers, path: str, body: dict[str, Any]
) -> None:
    response = client.post(path, json=body, headers=headers("all"))
    assert response.status_code == 400 and response.json["errors"]


def test_values_that_lengthen_when_folded_are_stored_or_refused_never_500(
    client: FlaskClient, headers: Headers
) -> None:
    # "ß" folds to "ss" and "ﬃ" to "ffi": the search key outgrows the name's 200 characters.
    created = make_profile(client, headers, name="ß" * 150)
    assert created["name"] == "ß" * 150
    found = client.get("/v1/profiles", query_string={"q": "SS" * 3}, headers=headers("agent"))
    assert [p["id"] for p in found.json["items"]] == [created["id"]]
    patched = client.patch(
        f"/v1/profiles/{created['id']}", json={"name": "ﬃ" * 100}, headers=headers("agent")
    )
    assert patched.status_code == 200 and patched.json["name"] == "ﬃ" * 100
    # Lower-cased, "İ" is two characters: this address is 202 once normalised.
    email = {"type": "email", "value": "İ" * 95 + "@example.com"}
    for path in ("/v1/profiles", "/v1/profiles/resolve"):
        answer = client.post(path, json={"identifiers": [email]}, headers=headers("channel"))
        assert answer.status_code == 400, (path, answer.json)
        assert answer.json["status"] == 400


def test_patching_a_profile_sets_and_removes_attributes(
    client: FlaskClient, headers: Headers
) -> None:
    profile = make_profile(client, headers, attributes={"city": "Shanghai", "pet": "cat"})
    url = f"/v1/profiles/{profile['id']}"
    patched = client.patch(
        url,
        json={"attributes": {"pet": None, "vip": True}, "tier": "gold"},
        headers=headers("agent"),
    )
    assert patched.status_code == 200
    assert patched.json["attributes"] == {"city": "Shanghai", "vip": True}
    assert patched.json["tier"] == "gold"
    assert client.patch("/v1/cases/c-x", json={}, headers=headers("agent")).status_code == 400


def test_an_interaction_cannot_name_another_customers_case(
    client: FlaskClient, headers: Headers
) -> None:
    mine = make_profile(client, headers)
    other = make_profile(client, headers, identifiers=[{"type": "app_user_id", "value": "o"}])
    case = client.post(
        "/v1/cases",
        json={"profile_id": other["id"], "channel": "chat", "subject": "invoice"},
        headers=headers("channel"),
    ).json
    response = client.post(
        "/v1/interactions",
        json={
            "profile_id": mine["id"],
            "channel": "chat",
            "direction": "inbound",
            "summary": "hello",
            "case_id": case["id"],
        },
        headers=headers("channel"),
    )
    assert response.status_code == 404
    ok = client.post(
        "/v1/interactions",
        json={
            "profile_id": other["id"],
            "channel": "voice",
            "direction": "outbound",
            "summary": "called back",
            "case_id": case["id"],
        },
        headers=headers("channel"),
    )
    assert ok.status_code == 201 and ok.json["case_id"] == case["id"]
