from __future__ import annotations

from typing import Any

from shared.pagination import encode_cursor
from tests.integration.identity.conftest import GOLD, Api


def test_the_default_tier_always_exists_and_cannot_be_deleted(api: Api) -> None:
    assert api.call("GET", "/v1/admin/tiers/default", "admin").json["min_factors"] == 1
    r = api.call("DELETE", "/v1/admin/tiers/default", "admin")
    assert r.status_code == 409 and r.mimetype == "application/problem+json"


def test_a_tier_is_created_replaced_listed_and_deleted(api: Api) -> None:
    assert api.tier("gold", GOLD).status_code == 201
    assert api.tier("gold", {**GOLD, "max_attempts": 3}).status_code == 200
    tiers = [t["tier"] for t in api.call("GET", "/v1/admin/tiers", "admin").json["items"]]
    assert tiers == ["default", "gold"]
    assert api.call("DELETE", "/v1/admin/tiers/gold", "admin").status_code == 204
    assert api.call("GET", "/v1/admin/tiers/gold", "admin").status_code == 404


def test_every_change_is_audited_with_who_when_before_and_after(api: Api, redis: Any) -> None:
    api.tier("gold", GOLD)
    api.tier("gold", {**GOLD, "max_attempts": 3})
    api.call("DELETE", "/v1/admin/tiers/gold", "admin")
    page = api.call("GET", "/v1/admin/audit?limit=2", "admin").json
    assert [e["action"] for e in page["items"]] == ["delete", "put"]
    assert page["items"][0]["who"] == "admin1" and page["items"][0]["after"] is None
    assert page["items"][1]["before"]["max_attempts"] == 5
    assert page["items"][1]["after"]["max_attempts"] == 3
    rest = api.call("GET", f"/v1/admin/audit?cursor={page['next_cursor']}", "admin").json
    assert [e["action"] for e in rest["items"]] == ["put"] and rest["next_cursor"] is None
    types = [f["type"] for _, f in redis.xrange("sb:events:identity")]
    assert types.count("identity.policy.changed") == 3


def test_an_unsatisfiable_policy_is_a_400_naming_the_field(api: Api) -> None:
    r = api.tier("gold", {"min_factors": 3, "allowed_factors": ["totp", "kba"]})
    assert r.status_code == 400 and "min_factors" in r.json["errors"]
    r = api.tier("gold", {"allowed_factors": ["totp", "retina_scan"]})
    assert r.status_code == 400 and "allowed_factors" in r.json["errors"]


def test_unknown_fields_and_wrong_types_are_rejected(api: Api) -> None:
    assert api.tier("gold", {"colour": "gold"}).status_code == 400
    assert api.tier("gold", {"min_factors": "two"}).status_code == 400


def test_policies_need_the_admin_scope(api: Api) -> None:
    assert api.call("PUT", "/v1/admin/tiers/gold", "channel", json=GOLD).status_code == 403
    assert api.c.get("/v1/admin/tiers").status_code == 401


def test_a_forged_audit_cursor_is_a_400(api: Api) -> None:
    """Only an entry id the audit issued reaches XREVRANGE: anything else was a 500."""
    api.tier("gold", GOLD)
    for before in ("garbage", True, {"a": 1}, "\ud800", "0-0", f"{2**64}-1", "١-1"):
        cursor = encode_cursor({"before": before})
        r = api.call("GET", f"/v1/admin/audit?cursor={cursor}", "admin")
        assert r.status_code == 400, (before, r.json)
        assert r.json["detail"] == "the cursor is not one this service issued"
