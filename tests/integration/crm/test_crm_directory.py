"""A channel key is no customer directory (API.md B): name search and listing need
agent or admin; a channel finds one profile by one exact identifier."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from tests.integration.crm.test_crm_api import make_profile

Headers = Callable[[str], dict[str, str]]


def test_a_channel_cannot_search_by_name_nor_list(client: FlaskClient, headers: Headers) -> None:
    make_profile(client, headers, name="Li Wei", tier="gold")
    for query in ({"q": "li"}, {"q": "13800138000"}, {}, {"tier": "gold"}):
        refused = client.get("/v1/profiles", query_string=query, headers=headers("channel"))
        assert refused.status_code == 403, query
        assert refused.mimetype == "application/problem+json"
        assert "identifier" in refused.json["detail"]
    for scope in ("agent", "admin"):
        found = client.get("/v1/profiles", query_string={"q": "li"}, headers=headers(scope))
        assert found.status_code == 200 and [p["name"] for p in found.json["items"]] == ["Li Wei"]


def test_a_channel_finds_one_profile_by_an_exact_identifier(
    client: FlaskClient, headers: Headers
) -> None:
    li = make_profile(
        client,
        headers,
        name="Li Wei",
        identifiers=[
            {"type": "phone", "value": "+86 138 0013 8000"},
            {"type": "email", "value": "li@example.com"},
        ],
    )
    make_profile(client, headers, name="Li Na", identifiers=[{"type": "email", "value": "na@x.cn"}])
    channel = headers("channel")
    for raw in ("phone:+8613800138000", "phone:138-0013-8000", "email:LI@example.com"):
        found = client.get("/v1/profiles", query_string={"identifier": raw}, headers=channel)
        assert found.status_code == 200, raw
        assert [p["id"] for p in found.json["items"]] == [li["id"]], raw
        assert found.json["next_cursor"] is None
    # A "+" typed into a URL unencoded arrives as a space; it still means the "+".
    plain = client.get("/v1/profiles?identifier=phone:+8613800138000", headers=channel)
    assert [p["id"] for p in plain.json["items"]] == [li["id"]]
    # A prefix, a name or another customer's part finds nothing.
    for raw in ("phone:+86138001380", "email:li@example", "app_user_id:Li Wei"):
        miss = client.get("/v1/profiles", query_string={"identifier": raw}, headers=channel)
        assert miss.status_code in (200, 400) and not (miss.json.get("items") or []), raw
    tiered = client.get(
        "/v1/profiles",
        query_string={"identifier": "email:li@example.com", "tier": "gold"},
        headers=channel,
    )
    assert tiered.status_code == 200 and tiered.json["items"] == []


def test_a_malformed_identifier_search_is_a_400_problem(
    client: FlaskClient, headers: Headers
) -> None:
    channel = headers("channel")
    for raw in ("13800138000", "phone:", ":x", "phone:not a phone", "fax:123", "phone:null"):
        bad = client.get("/v1/profiles", query_string={"identifier": raw}, headers=channel)
        assert bad.status_code == 400, raw
        assert bad.mimetype == "application/problem+json"
        assert "identifier" in bad.json["errors"], raw
    both = client.get(
        "/v1/profiles", query_string={"identifier": "email:a@b.cn", "q": "li"}, headers=channel
    )
    assert both.status_code == 400
