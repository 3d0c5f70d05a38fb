"""A verification's challenge states are written one factor at a time, atomically:
concurrent challenges and document results never lose each other's writes."""

from __future__ import annotations

import threading

from services.identity.bootstrap import Wiring
from tests.integration.identity.conftest import Api

FACTORS = [f"factor-{i}" for i in range(16)]


def concurrent_writes(service: Wiring, vid: str) -> None:
    barrier = threading.Barrier(len(FACTORS))

    def write(factor: str) -> None:
        barrier.wait()
        for n in range(5):
            assert service.store.set_challenge(vid, factor, {"reference": factor, "n": n})

    threads = [threading.Thread(target=write, args=(f,)) for f in FACTORS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_challenges_of_different_factors_all_stay(api: Api, service: Wiring) -> None:
    vid = api.start("c-1", "chat").json["verification_id"]
    concurrent_writes(service, vid)
    challenges = service.store.verification(vid)["challenges"]  # type: ignore[index]
    assert {f: challenges[f] for f in FACTORS} == {f: {"reference": f, "n": 4} for f in FACTORS}


def test_a_result_applies_only_to_the_submission_it_names(api: Api, service: Wiring) -> None:
    store = service.store
    vid = api.start("c-1", "chat").json["verification_id"]
    assert store.set_challenge(vid, "document", {"reference": "r-2", "result": None})
    assert not store.set_challenge(
        vid, "document", {"result": "approved"}, merge=True, only_if_reference="r-1"
    )
    assert store.set_challenge(
        vid, "document", {"result": "rejected"}, merge=True, only_if_reference="r-2"
    )
    state = store.verification(vid)["challenges"]["document"]  # type: ignore[index]
    assert state == {"reference": "r-2", "result": "rejected"}
    assert not store.set_challenge("v-00-unknown", "document", {"reference": "r"})


def test_a_plugin_state_with_an_integer_beyond_64_bits_is_stored_exactly(
    api: Api, service: Wiring
) -> None:
    # Stored JSON is written by orjson, which refuses such integers: the fallback keeps them.
    vid = api.start("c-1", "chat").json["verification_id"]
    big = {"reference": "r", "n": 2**70, "text": "Zürich 北京"}
    assert service.store.set_challenge(vid, "document", big)
    assert service.store.verification(vid)["challenges"]["document"] == big  # type: ignore[index]
