"""A check sends its reservation script by its sha (issue 17: CPU per TOTP flow), and
still works once Redis has forgotten its scripts (a restart, SCRIPT FLUSH)."""

from __future__ import annotations

from typing import Any

from tests.integration.identity.conftest import Api


def _flow(api: Api, cid: str) -> dict[str, Any]:
    _, totp = api.enroll_totp(cid)
    vid = api.start(cid).json["verification_id"]
    answer: dict[str, Any] = api.check(vid, "totp", code=totp.now()).json
    return answer


def test_a_check_sends_no_script_text_once_redis_knows_it(api: Api, redis: Any) -> None:
    assert _flow(api, "c-1")["status"] == "approved"  # the first of a process loads them
    redis.config_resetstat()
    assert _flow(api, "c-2")["status"] == "approved"
    stats = redis.info("commandstats")
    assert stats.get("cmdstat_evalsha", {}).get("calls", 0) >= 2  # the start and the check
    assert "cmdstat_eval" not in stats, stats["cmdstat_eval"]


def test_a_check_after_redis_forgot_its_scripts_still_approves(api: Api, redis: Any) -> None:
    assert _flow(api, "c-3")["status"] == "approved"
    _, totp = api.enroll_totp("c-4")
    vid = api.start("c-4").json["verification_id"]
    redis.script_flush()
    answer = api.check(vid, "totp", code=totp.now()).json
    assert answer["status"] == "approved", answer
