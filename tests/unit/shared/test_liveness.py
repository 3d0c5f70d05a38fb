"""A runnable counts as hung once it has not stamped for max(3 x its wait, max_age);
each hung one is logged once, by name."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from shared import liveness
from shared.liveness import Progress


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    # Another test may have left the root logger at CRITICAL: listen where it is said.
    logger = logging.getLogger("sb.consumer")
    caplog.set_level(logging.INFO, logger="sb.consumer")
    logger.addHandler(caplog.handler)
    try:
        # One entry per record, whichever way it reached the capture.
        yield lambda: [
            r.getMessage()
            for r in {id(r): r for r in caplog.records}.values()
            if r.name == "sb.consumer"
        ]
    finally:
        logger.removeHandler(caplog.handler)


def in_a_thread(body: Callable[[], None]) -> None:
    # Attaching binds the calling thread: keep that off the test runner's own.
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_runnable_is_hung_past_the_larger_of_three_waits_and_max_age(
    warnings: Callable[[], list[str]],
) -> None:
    progress = Progress(max_age=60.0)

    def runnables() -> None:
        progress.attach("slow")
        liveness.stamp(30.0)  # e.g. a loop that blocks 30 s on a read
        progress.attach("quick")
        liveness.stamp(0.05)

    in_a_thread(runnables)
    at = progress.slots()[1].stamped  # the later of the two
    assert progress.hung(at + 59) == []
    assert progress.hung(at + 61) == ["quick"]
    assert progress.hung(at + 62) == ["quick"]  # said once, not on every check
    assert progress.hung(at + 91) == ["slow", "quick"]
    said = warnings()
    assert len(said) == 2
    assert "quick made no progress" in said[0] and "slow made no progress" in said[1]


def test_stamps_count_from_the_start_and_a_runnable_that_stamps_again_recovers(
    warnings: Callable[[], list[str]],
) -> None:
    progress = Progress(max_age=60.0)
    stamp_now = threading.Event()

    def runnable() -> None:
        progress.attach("relay")  # counted as stamped at its start
        stamp_now.wait()
        liveness.stamp(0.1)

    thread = threading.Thread(target=runnable)
    thread.start()
    assert wait_for(lambda: len(progress.slots()) == 1)
    (slot,) = progress.slots()
    assert slot.stamps == 0
    assert progress.hung(slot.stamped + 59) == []
    assert progress.hung(slot.stamped + 61) == ["relay"]
    stamp_now.set()
    thread.join()
    assert progress.hung() == []
    assert [s.stamps for s in progress.slots()] == [1]
    assert warnings()[-1] == "runnable relay progresses again"


def test_a_stamp_outside_an_attached_thread_does_nothing() -> None:
    liveness.stamp(1.0)  # e.g. a test calling Consumer.run itself
    assert Progress().slots() == []
