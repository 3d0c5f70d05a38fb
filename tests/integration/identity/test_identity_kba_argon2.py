"""Knowledge answers are Argon2id; PBKDF2 hashes stored before keep working and are
upgraded, atomically, on the next right answer (API.md B)."""

from __future__ import annotations

import time
from typing import Any

from services.identity.bootstrap import Wiring
from services.identity.domain import kba
from tests.integration.identity.conftest import Api

ONE_FACTOR = {"min_factors": 1, "require_possession": False, "max_attempts": 5}


def stored_answers(service: Wiring, cid: str) -> dict[str, str]:
    [record] = [f for f in service.store.factors(cid) if f["type"] == "kba"]
    return dict(record["data"]["answers"])


def legacy_enrolment(service: Wiring, cid: str) -> str:
    """A kba factor as the PBKDF2 code path stored it before Argon2id."""
    pepper, iterations = service.config.kba_pepper, service.config.kba_iterations
    record = {
        "factor_id": service.store.new_id("f", cid),
        "type": "kba",
        "status": "active",
        "created_at": time.time(),
        "data": {
            "answers": {
                q: kba.hash_answer(a, pepper=pepper, iterations=iterations)
                for q, a in {"first_pet": "Rex", "birth_city": "Oslo"}.items()
            }
        },
        "public": {"questions": ["birth_city", "first_pet"]},
    }
    service.store.save_factor(cid, record, [])
    return str(record["factor_id"])


def check(api: Api, cid: str, answers: dict[str, str]) -> Any:
    vid = api.start(cid, "chat", tier="kba1").json["verification_id"]
    return api.check(vid, "kba", answers=answers)


def test_a_new_enrolment_stores_argon2id_hashes(api: Api, service: Wiring) -> None:
    r = api.enroll("c-1", {"type": "kba", "answers": {"first_pet": "Rex"}})
    assert r.status_code == 201
    [stored] = stored_answers(service, "c-1").values()
    assert stored.startswith("$argon2id$v=19$m=64,t=1,p=1$")  # the tests' settings
    api.tier("kba1", {**ONE_FACTOR, "allowed_factors": ["kba"]})
    assert check(api, "c-1", {"first_pet": " rex"}).json["status"] == "approved"


def test_a_legacy_pbkdf2_hash_verifies_and_is_upgraded_on_success_only(
    api: Api, service: Wiring
) -> None:
    api.tier("kba1", {**ONE_FACTOR, "allowed_factors": ["kba"]})
    legacy_enrolment(service, "c-1")
    before = stored_answers(service, "c-1")
    assert all(h.startswith("pbkdf2_sha256$") for h in before.values())

    wrong = check(api, "c-1", {"first_pet": "rex", "birth_city": "paris"})
    assert wrong.json["status"] == "pending" and wrong.json["remaining_attempts"] == 4
    assert stored_answers(service, "c-1") == before  # a wrong answer changes nothing

    right = check(api, "c-1", {"first_pet": "REX", "birth_city": "oslo"})
    assert right.json["status"] == "approved", right.json
    after = stored_answers(service, "c-1")
    assert all(h.startswith("$argon2id$") for h in after.values()), after
    # and the upgraded hashes keep verifying, wrong answers keep failing and counting
    assert check(api, "c-1", {"first_pet": "rex", "birth_city": "oslo"}).json["status"] == (
        "approved"
    )
    again = check(api, "c-1", {"first_pet": "max", "birth_city": "oslo"})
    assert again.json["status"] == "pending" and again.json["remaining_attempts"] == 4


def test_the_upgrade_replaces_only_the_record_it_read(service: Wiring) -> None:
    fid = legacy_enrolment(service, "c-1")
    read = service.store.factor("c-1", fid)
    assert read is not None
    changed = {**read, "public": {"questions": ["first_pet"]}}
    service.store.save_factor("c-1", changed, [])  # changed meanwhile (another worker)
    assert not service.store.replace_factor_data("c-1", read, {"answers": {}})
    assert service.store.factor("c-1", fid) == changed
    assert service.store.replace_factor_data("c-1", changed, {"answers": {"x": "y"}})
    assert service.store.factor("c-1", fid) == {**changed, "data": {"answers": {"x": "y"}}}
