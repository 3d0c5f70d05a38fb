"""Bad input to the CRM is a 4xx problem document, never a 500: forged cursors, ids
with control characters, and database errors that must not carry customer data."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.crm.adapters.sql_engine import make_engine
from services.crm.adapters.sql_store import SqlStore
from services.crm.domain.identifiers import Identifier
from services.crm.errors import Contention
from services.crm.service import CrmService

Headers = Callable[[str], dict[str, str]]
BAD_CURSOR = "the cursor is not one this service issued"


def forged(position: Any) -> str:
    """A cursor as a client can forge one (``encode_cursor`` refuses NaN, this allows it)."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def assert_bad_cursor(response: Any) -> None:
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"] == BAD_CURSOR
    assert response.json["errors"] == {"cursor": ["Invalid cursor."]}


def make_profile(client: FlaskClient, headers: Headers) -> str:
    body = {"name": "Li Wei", "identifiers": [{"type": "email", "value": "li@example.com"}]}
    response = client.post("/v1/profiles", json=body, headers=headers("channel"))
    assert response.status_code == 201, response.json
    return str(response.json["id"])


FORGED_TIMELINE = [
    {"at": "2026-01-01T00:00:00", "id": 2**63},  # past BIGINT
    {"at": "2026-01-01T00:00:00+00:00", "id": -(2**63) - 1},
    {"at": "2026-01-01T00:00:00+00:00", "id": float("inf")},
    {"at": "2026-01-01T00:00:00+00:00", "id": True},
    {"at": "2026-01-01T00:00:00+00:00", "id": "7"},
    {"at": "0001-01-01T00:00:00+14:00", "id": 1},  # before year 1 in UTC
    {"at": "9999-12-31T23:59:59-14:00", "id": 1},  # after year 9999 in UTC
    {"at": "2026-01-01T00:00:00\u0000", "id": 1},
    {"at": 20260101, "id": 1},
]


def test_timeline_pages_with_issued_cursors_and_refuses_forged_ones(
    client: FlaskClient, headers: Headers
) -> None:
    profile_id = make_profile(client, headers)
    for tier in ("gold", "silver", "bronze"):
        patched = client.patch(
            f"/v1/profiles/{profile_id}", json={"tier": tier}, headers=headers("agent")
        )
        assert patched.status_code == 200
    url = f"/v1/profiles/{profile_id}/timeline"
    seen: list[int] = []
    cursor = ""
    while True:
        page = client.get(f"{url}?limit=1&cursor={cursor}", headers=headers("agent")).json
        seen += [item["id"] for item in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 4 == len(set(seen))
    # A naive time is read as UTC, as the store reads it.
    naive = forged({"at": "2999-01-01T00:00:00", "id": 1})
    response = client.get(f"{url}?cursor={naive}", headers=headers("agent"))
    assert response.status_code == 200 and len(response.json["items"]) == 4
    for position in FORGED_TIMELINE:
        assert_bad_cursor(client.get(f"{url}?cursor={forged(position)}", headers=headers("agent")))


@pytest.mark.parametrize("after", [True, 2**63, -(2**63) - 1])
def test_a_forged_merge_candidates_cursor_is_a_400(
    client: FlaskClient, headers: Headers, after: Any
) -> None:
    response = client.get(
        f"/v1/merge-candidates?cursor={forged({'after': after})}", headers=headers("agent")
    )
    assert_bad_cursor(response)


@pytest.mark.parametrize("after", ["a\u0000", "p-\u001f", "\ud800"])
def test_a_forged_search_cursor_is_a_400(client: FlaskClient, headers: Headers, after: str) -> None:
    response = client.get(
        f"/v1/profiles?q=li&cursor={forged({'after': after})}", headers=headers("agent")
    )
    assert_bad_cursor(response)
    # And a NUL in the query itself is a validation problem, not a database error.
    query = client.get("/v1/profiles?q=li%00", headers=headers("agent"))
    assert query.status_code == 400 and "q" in query.json["errors"]


@pytest.fixture
def statements(app: Flask) -> Iterator[list[Any]]:
    """Parameters of every statement the app's engines execute."""
    seen: list[Any] = []

    def capture(_conn: Any, _cursor: Any, _statement: str, params: Any, *_: Any) -> None:
        seen.append(params)

    store = app.extensions["sb"]["store"]
    engines = {id(e): e for e in (store.engine, store.read_engine)}.values()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", capture)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/profiles/p-%00x", None),
        ("GET", "/v1/profiles/p-%01x", None),
        ("PATCH", "/v1/profiles/p-%00x", {"tier": "gold"}),
        ("DELETE", "/v1/profiles/p-%00x", None),
        ("GET", "/v1/profiles/p-%00x/timeline", None),
        ("GET", "/v1/profiles/p-%00x/export", None),
        ("POST", "/v1/profiles/p-%00x/merge", {"source_id": "p-1", "dry_run": True}),
        ("POST", "/v1/profiles/p-%00x/unmerge", {"merge_id": "m-1"}),
        ("GET", "/v1/cases/c-%00x", None),
        ("PATCH", "/v1/cases/c-%00x", {"priority": "high"}),
    ],
)
def test_a_path_id_with_a_control_character_is_an_unknown_id(
    client: FlaskClient,
    headers: Headers,
    statements: list[Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = client.open(path, method=method, json=body, headers=headers("admin"))
    unknown = client.open(
        path.replace("%00", "").replace("%01", ""),
        method=method,
        json=body,
        headers=headers("admin"),
    )
    assert response.status_code == 404, response.json
    assert response.mimetype == "application/problem+json"
    assert {k: response.json[k] for k in ("type", "title", "status")} == {
        k: unknown.json[k] for k in ("type", "title", "status")
    }
    # It never reaches the database (PostgreSQL text cannot even hold a NUL).
    sent = json.dumps(statements, default=str)
    assert "\\u0000" not in sent and "\\u0001" not in sent


@pytest.mark.parametrize("autocommit", [False, True])
def test_database_errors_do_not_carry_the_bound_values(db_url: str, autocommit: bool) -> None:
    """shared/app.py logs the traceback of an unexpected error: no customer data in it."""
    engine = make_engine(db_url, pool_size=1, autocommit=autocommit)
    secret = "Zhang Wei <zhang.wei@example.com>"
    try:
        with engine.connect() as conn, pytest.raises(SQLAlchemyError) as raised:
            conn.execute(
                text("SELECT id FROM crm_profiles WHERE no_such_column = :name"), {"name": secret}
            )
    finally:
        engine.dispose()
    assert "no_such_column" in str(raised.value)
    assert secret not in str(raised.value) and "zhang.wei" not in repr(raised.value)


def test_a_lost_race_names_no_customer_value(crm: CrmService, engine: Engine) -> None:
    holder = crm.create_profile([{"type": "phone", "value": "13800138000"}], {})
    other = crm.create_profile([{"type": "app_user_id", "value": "u-other"}], {})
    with pytest.raises(Contention) as lost:
        with SqlStore(engine).transaction() as tx:
            tx.insert_identifiers(other["id"], [Identifier("phone", "+8613800138000")])
    # What a log of it prints: every message of the chain a traceback would show.
    messages, error = [], lost.value
    while error is not None:
        messages.append(str(error))
        error = None if error.__suppress_context__ else (error.__cause__ or error.__context__)
    assert "13800138000" not in " ".join(messages)  # PostgreSQL's message names the key
    assert holder["id"] != other["id"]


def test_concurrent_writers_winning_every_retry_is_a_503_to_retry(
    client: FlaskClient, headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_lost(*_: Any, **__: Any) -> Any:
        raise Contention("ix_crm_identifiers_type_value")

    monkeypatch.setattr(CrmService, "update_profile", always_lost)
    response = client.patch("/v1/profiles/p-1", json={"tier": "gold"}, headers=headers("agent"))
    assert response.status_code == 503, response.json
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
