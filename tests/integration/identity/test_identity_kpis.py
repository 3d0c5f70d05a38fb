"""KPIs after a known mix of verifications: GET /v1/stats and the /metrics series."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from services.identity.bootstrap import Wiring
from tests.integration.identity.conftest import Api

KBA_ONLY = {
    "min_factors": 1,
    "allowed_factors": ["kba", "totp"],
    "require_possession": False,
    "max_attempts": 2,
}
RIGHT, WRONG = {"first_pet": "rex"}, {"first_pet": "tom"}


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def run(
    api: Api, clock: Clock, cid: str, tier: str, channel: str, answers: list[dict[str, str]]
) -> str:
    """One verification of ``cid``; each answer is checked 0.1 s after the previous one."""
    assert api.enroll(cid, {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    vid = api.start(cid, channel, tier=tier).json["verification_id"]
    status = "pending"
    for given in answers:
        clock.now += 0.1
        status = api.check(vid, "kba", answers=given).json["status"]
    return status


def approved_after(api: Api, clock: Clock, cid: str, tier: str, channel: str, ms: int) -> None:
    assert api.enroll(cid, {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    vid = api.start(cid, channel, tier=tier).json["verification_id"]
    clock.now += ms / 1000
    assert api.check(vid, "kba", answers=RIGHT).json["status"] == "approved"


def test_stats_and_metrics_after_a_known_mix_of_outcomes(api: Api, service: Wiring) -> None:
    clock = Clock()
    service.clock = clock
    api.tier("gold", KBA_ONLY)
    api.tier("silver", KBA_ONLY)
    # gold on chat: three approved (one after a wrong answer), one locked -> 3 / 4
    approved_after(api, clock, "c-1", "gold", "chat", 100)
    approved_after(api, clock, "c-2", "gold", "chat", 200)
    assert run(api, clock, "c-3", "gold", "chat", [WRONG, RIGHT]) == "approved"  # 200 ms
    assert run(api, clock, "c-4", "gold", "chat", [WRONG, WRONG]) == "locked"
    # silver on voice: two approved, two locked -> 2 / 4
    approved_after(api, clock, "c-5", "silver", "voice", 400)
    approved_after(api, clock, "c-6", "silver", "voice", 5000)
    assert run(api, clock, "c-7", "silver", "voice", [WRONG, WRONG]) == "locked"
    assert run(api, clock, "c-8", "silver", "voice", [WRONG, WRONG]) == "locked"
    # A verification that failed once and is still open is not finished: not counted.
    assert run(api, clock, "c-9", "gold", "chat", [WRONG]) == "pending"

    stats = api.call("GET", "/v1/stats", "admin").json
    rows = {(r["tier"], r["channel"]): r for r in stats["by_tier_channel"]}
    assert set(rows) == {("gold", "chat"), ("silver", "voice")}
    gold, silver = rows["gold", "chat"], rows["silver", "voice"]
    assert (gold["started"], gold["approved"], gold["locked"]) == (4, 3, 1)
    assert gold["success_rate"] == 0.75
    assert (silver["started"], silver["approved"], silver["locked"]) == (4, 2, 2)
    assert silver["success_rate"] == 0.5
    # Requested counts every start when it is made, the still pending c-9 too.
    assert (gold["requested"], gold["completion_rate"]) == (5, 0.6)
    assert (silver["requested"], silver["completion_rate"]) == (4, 0.5)
    # Durations of the five approvals: 100, 200, 200, 400 and 5000 ms (nearest rank).
    assert stats["duration_ms"] == {"p50": 200.0, "p95": 5000.0, "samples": 5}
    assert stats["requests"]["fresh"] == 9

    families = {f.name: f for f in text_string_to_metric_families(api.c.get("/metrics").text)}
    success = {
        (s.labels["tier"], s.labels["channel"]): s.value
        for s in families["sb_identity_success_ratio"].samples
    }
    assert success == {("gold", "chat"): 0.75, ("silver", "voice"): 0.5}
    completion = {
        (s.labels["tier"], s.labels["channel"]): s.value
        for s in families["sb_identity_completion_ratio"].samples
    }
    assert completion == {("gold", "chat"): 0.6, ("silver", "voice"): 0.5}
    # The same durations as a histogram in seconds (promtool: base units, no quantile label
    # on a gauge).
    duration = {
        (s.name, s.labels.get("le")): s.value
        for s in families["sb_identity_verification_duration_seconds"].samples
    }
    buckets = {le: n for (name, le), n in duration.items() if name.endswith("_bucket")}
    assert buckets["0.1"] == 1 and buckets["0.25"] == 3 and buckets["0.5"] == 4
    assert buckets["2.5"] == 4 and buckets["5.0"] == 5 and buckets["+Inf"] == 5
    assert duration[("sb_identity_verification_duration_seconds_count", None)] == 5
    assert abs(duration[("sb_identity_verification_duration_seconds_sum", None)] - 5.9) < 1e-9
    requests = {
        s.labels["outcome"]: s.value for s in families["sb_identity_verification_requests"].samples
    }
    assert requests["fresh"] == 9


def test_no_finished_verification_means_no_rate_and_no_durations(api: Api) -> None:
    api.tier("gold", KBA_ONLY)
    assert api.enroll("c-1", {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    api.start("c-1", "chat", tier="gold")
    stats = api.call("GET", "/v1/stats", "agent").json
    # Requested, not ended: no success rate yet, and nothing completed.
    assert stats["by_tier_channel"] == [
        {
            "tier": "gold",
            "channel": "chat",
            "started": 0,
            "approved": 0,
            "locked": 0,
            "success_rate": None,
            "requested": 1,
            "completion_rate": 0.0,
        }
    ]
    assert stats["duration_ms"] == {"p50": None, "p95": None, "samples": 0}
    families = {f.name: f for f in text_string_to_metric_families(api.c.get("/metrics").text)}
    assert families["sb_identity_success_ratio"].samples == []
    assert [s.value for s in families["sb_identity_completion_ratio"].samples] == [0.0]
    assert api.call("GET", "/v1/stats", "channel").status_code == 403


def test_a_reused_session_is_requested_and_completed(api: Api) -> None:
    api.tier("gold", KBA_ONLY)
    assert api.enroll("c-1", {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    vid = api.start("c-1", "chat", tier="gold").json["verification_id"]
    token = api.check(vid, "kba", answers=RIGHT).json["session_token"]
    again = api.start("c-1", "chat", tier="gold", session_token=token).json
    assert again["reused"] is True
    [row] = api.call("GET", "/v1/stats", "admin").json["by_tier_channel"]
    assert (row["requested"], row["approved"], row["completion_rate"]) == (2, 2, 1.0)


def test_tiers_and_channels_nobody_configured_fold_into_other(api: Api) -> None:
    api.tier("gold", {**KBA_ONLY, "channels": {"kiosk": {"allowed_factors": ["kba"]}}})
    assert api.enroll("c-1", {"type": "kba", "answers": {"first_pet": "Rex"}}).status_code == 201
    for i in range(30):  # a client inventing names: one row, one series, not thirty
        assert api.start("c-1", f"ch{i}", tier=f"tier{i}").status_code == 201
    for channel in ("chat", "kiosk"):  # a common channel, and one a policy names
        api.start("c-1", channel, tier="gold")
    stats = api.call("GET", "/v1/stats", "admin").json
    rows = {(r["tier"], r["channel"]): r["requested"] for r in stats["by_tier_channel"]}
    assert rows == {("other", "other"): 30, ("gold", "chat"): 1, ("gold", "kiosk"): 1}
    families = {f.name: f for f in text_string_to_metric_families(api.c.get("/metrics").text)}
    labels = {
        (s.labels["tier"], s.labels["channel"])
        for s in families["sb_identity_completion_ratio"].samples
    }
    assert labels == set(rows)
