"""An Argon2id check under a gevent worker leaves the worker's other requests running."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a process of its own: monkey-patching is for the whole process, as under
# gunicorn's gevent worker. A greenlet ticks while one costly hash is computed; it can
# only tick if the hash left the hub free.
_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import sys
    import gevent
    from services.identity.adapters.argon2_answers import Argon2Answers

    hasher = Argon2Answers(b"pepper", memory_kib=65536, time_cost=4)
    direct = sys.argv[1] == "direct"
    ticks = []
    done = []

    def ticker():
        while not done:
            ticks.append(1)
            gevent.sleep(0.001)

    def check():
        gevent.sleep(0.01)  # the ticker is running before the hash starts
        before = len(ticks)
        if direct:
            hasher._ph.hash("answer")  # what the adapter did before: on the hub's thread
        else:
            hasher.hash("answer")
        done.append(len(ticks) - before)

    gevent.joinall([gevent.spawn(ticker), gevent.spawn(check)])
    print(done[0])
    """
)


def _ticks_during_hash(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.strip())


def test_a_costly_answer_hash_lets_the_other_greenlets_run() -> None:
    assert _ticks_during_hash("offloaded") >= 1


def test_the_same_hash_on_the_hub_would_have_held_every_greenlet() -> None:
    # The contrast that makes the first test mean something.
    assert _ticks_during_hash("direct") == 0
