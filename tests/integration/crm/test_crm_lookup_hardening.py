"""Case lookup is no oracle: the same work and answer for every miss, budgets per client
that no choice of ``caller`` raises (API.md B, "Case numbers")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from services.crm.app import create_app
from shared.config import Settings
from tests.integration.crm.test_crm_api import make_profile, refund_case_number

Headers = Callable[[str], dict[str, str]]
FROZEN = 1_000_000 * 60.0 + 1  # one fixed-window minute, whatever the machine's speed


def _app(make_settings: Callable[..., Settings], url: str, **env: str) -> Flask:
    app = create_app(make_settings("crm", DATABASE_URL=url, **env))
    app.extensions["sb"]["crm"].limiter.clock = lambda: FROZEN
    return app


@pytest.fixture
def lookup_app(make_settings: Callable[..., Settings], empty_db_url: str) -> Iterator[Flask]:
    app = _app(
        make_settings,
        empty_db_url,
        CRM_LOOKUP_LIMIT_PER_MINUTE="1000",
        CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE="1000",
        CRM_LOOKUP_CLIENT_MISSES_PER_MINUTE="1000",
    )
    yield app
    app.extensions["sb"]["store"].dispose()


def _statements(app: Flask) -> tuple[list[str], Callable[[], None]]:
    """Every SQL statement the app's engines execute, in order."""
    seen: list[str] = []
    sb = app.extensions["sb"]
    engines = {id(e): e for e in (sb["engine"], sb["store"].read_engine)}.values()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)

    def stop() -> None:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)

    return seen, stop


def test_a_miss_does_the_same_work_and_answers_the_same_whatever_was_wrong(
    lookup_app: Flask, headers: Headers
) -> None:
    client = lookup_app.test_client()
    number = refund_case_number(client, headers)  # holder of 13800138000
    make_profile(client, headers, identifiers=[{"type": "phone", "value": "13900000000"}])
    channel = headers("channel")

    def lookup(case_number: str, phone: str) -> tuple[Any, list[str]]:
        seen, stop = _statements(lookup_app)
        try:
            answer = client.get(
                "/v1/cases/lookup",
                query_string={"case_number": case_number, "phone": phone},
                headers=channel,
            )
        finally:
            stop()
        return answer, seen

    right, right_sql = lookup(number, "13800138000")
    assert right.status_code == 200 and right_sql
    misses = {
        "another customer's phone": lookup(number, "13900000000"),
        "a phone nobody holds": lookup(number, "13700000000"),
        "no such case": lookup("C-000-000-000", "13800138000"),
        "no such old-style case": lookup("C-2026-999999", "13800138000"),
        "not a phone": lookup(number, "not a phone"),
    }
    for what, (answer, sql) in misses.items():
        # One statement, the very one a hit runs: nothing the database does tells them apart.
        assert sql == right_sql, what
        assert answer.status_code == 404, what
        assert answer.data == misses["no such case"][0].data, what
        assert _comparable(answer.headers) == _comparable(misses["no such case"][0].headers), what


def _comparable(headers: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k.lower() != "x-request-id")


def test_a_misheard_case_number_is_a_400_before_any_database_work(
    lookup_app: Flask, headers: Headers
) -> None:
    client = lookup_app.test_client()
    number = refund_case_number(client, headers)
    body = number[2:].replace("-", "")
    wrong = "C-" + body[:8] + ("0" if body[8] != "0" else "1")
    # Read aloud and typed back: lower case, spaces, O for 0 and I/L for 1 still find it.
    spoken = " ".join(body.lower()).replace("0", "o").replace("1", "l")
    found = client.get(
        "/v1/cases/lookup",
        query_string={"case_number": spoken, "phone": "13800138000"},
        headers=headers("channel"),
    )
    assert found.status_code == 200
    seen, stop = _statements(lookup_app)
    try:
        mistyped = client.get(
            "/v1/cases/lookup",
            query_string={"case_number": wrong, "phone": "13800138000"},
            headers=headers("channel"),
        )
    finally:
        stop()
    assert mistyped.status_code == 400 and seen == []
    assert mistyped.json["type"].endswith("/invalid-case-number")
    assert "misheard or mistyped" in mistyped.json["detail"]


def test_no_choice_of_caller_raises_a_clients_lookup_budget(
    make_settings: Callable[..., Settings], empty_db_url: str, headers: Headers
) -> None:
    app = _app(
        make_settings,
        empty_db_url,
        CRM_LOOKUP_LIMIT_PER_MINUTE="10",
        CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE="50",
        CRM_LOOKUP_CLIENT_MISSES_PER_MINUTE="1000",
    )
    client = app.test_client()
    number = refund_case_number(client, headers)
    url = f"/v1/cases/lookup?case_number={number}&phone=13800138000"
    answered = 0
    for i in range(1000):
        status = client.get(f"{url}&caller=%2B86139{i:08d}", headers=headers("channel")).status_code
        assert status in (200, 429)
        answered += status == 200
    assert answered == 50
    # Leaving ``caller`` out is no way around the ceiling either.
    assert client.get(url, headers=headers("channel")).status_code == 429
    # Another API client has its own.
    assert client.get(url, headers=headers("all")).status_code == 200
    app.extensions["sb"]["store"].dispose()


def test_failed_lookups_have_a_smaller_budget_per_client(
    make_settings: Callable[..., Settings], empty_db_url: str, headers: Headers
) -> None:
    # An enumerator misses nearly always; a customer with the right number and
    # phone nearly never (the check symbol turned typing errors away as 400s).
    app = _app(
        make_settings,
        empty_db_url,
        CRM_LOOKUP_LIMIT_PER_MINUTE="10",
        CRM_LOOKUP_CLIENT_LIMIT_PER_MINUTE="600",
        CRM_LOOKUP_CLIENT_MISSES_PER_MINUTE="5",
    )
    client = app.test_client()
    number = refund_case_number(client, headers)
    channel = headers("channel")

    def lookup(phone: str, caller: str) -> int:
        url = f"/v1/cases/lookup?case_number={number}&phone={phone}&caller={caller}"
        return client.get(url, headers=channel).status_code

    assert [lookup(f"1390000000{i}", f"ivr-{i}") for i in range(5)] == [404] * 5
    refused = client.get(
        f"/v1/cases/lookup?case_number={number}&phone=13800138000&caller=ivr-9", headers=channel
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    # A 400 for a misheard number is no miss: it says nothing about any case.
    other = headers("all")
    for _ in range(6):  # more than the budget of misses, within the budget of lookups
        bad = client.get(
            "/v1/cases/lookup?case_number=C-AAA-AAA-AAB&phone=13800138000", headers=other
        )
        assert bad.status_code == 400
    assert (
        client.get(
            f"/v1/cases/lookup?case_number={number}&phone=13800138000", headers=other
        ).status_code
        == 200
    )
    app.extensions["sb"]["store"].dispose()
