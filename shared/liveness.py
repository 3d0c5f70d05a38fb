"""Progress stamps: how a consumer process tells a working runnable from a hung one.

A runnable's thread stays alive while the runnable is stuck (on a lock, on a socket
without a timeout, in an endless loop), so a live thread proves nothing. Instead each
runnable's loop calls ``stamp(wait)`` at the top of every pass (so the previous pass
ended, whether it did work, waited, or handled an error), ``wait`` being the longest
the pass may legitimately block (its ``XREADGROUP BLOCK``, its idle sleep).
``shared.consumer_main`` attaches each runnable's thread to a ``Progress`` and stops
beating while any of them is overdue: not stamped for ``max(3 * wait, max_age)``
seconds. Hung means stuck: a runnable that keeps failing is restarted and logged by
``consumer_main``, and lost Redis stops the beat on its own.

Why ``max_age`` (``SB_PROGRESS_MAX_AGE``, 60 s) and not just a multiple of ``wait``:
one pass may be slow without being stuck - a Redis command may take its 10 s socket
timeout four times over (three retries), a relay may wait for another's row locks, a
reclaim or a batch of handlers does real work. Three times ``wait`` only matters for
a loop configured to block longer than 20 s. With compose's ``--max-age 30`` a hang
turns the container unhealthy about 90 s (plus the healthcheck's retries) after its
last pass.

Why the slot is found through the thread: runnables keep their shape
(``callable(stop)``) and the services' ``build(settings, redis)`` needs no new
argument. Outside an attached thread (tests, a script calling ``Consumer.run``)
``stamp`` does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

log = logging.getLogger("sb.consumer")

MAX_AGE = 60.0
WAITS = 3  # iterations of its own wait a runnable may miss before it counts as hung

_attached = threading.local()


@dataclass
class Slot:
    """One runnable's last stamp (monotonic seconds) and the wait it announced."""

    name: str
    stamped: float
    wait: float = 0.0
    stamps: int = 0
    overdue: bool = False

    def bound(self, max_age: float) -> float:
        return max(WAITS * self.wait, max_age)


def stamp(wait: float = 0.0) -> None:
    """A pass of the calling runnable's loop begins; it may block ``wait`` seconds."""
    slot: Slot | None = getattr(_attached, "slot", None)
    if slot is not None:  # written by its own thread only: no lock needed
        slot.wait = wait
        slot.stamped = time.monotonic()
        slot.stamps += 1


class Progress:
    """The slots of one process's runnables."""

    def __init__(self, max_age: float = MAX_AGE) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._slots: list[Slot] = []

    def attach(self, name: str | None = None) -> None:
        """Give the calling thread a slot, counted as stamped now (its start)."""
        slot = Slot(name or threading.current_thread().name, time.monotonic())
        with self._lock:
            self._slots.append(slot)
        _attached.slot = slot

    def slots(self) -> list[Slot]:
        with self._lock:
            return [replace(slot) for slot in self._slots]

    def hung(self, now: float | None = None) -> list[str]:
        """Names of the runnables overdue now. Each is logged once when it falls
        overdue (and once when it stamps again), not on every check."""
        now = time.monotonic() if now is None else now
        names = []
        with self._lock:
            for slot in self._slots:
                name, idle = slot.name, now - slot.stamped
                overdue = idle > slot.bound(self.max_age)
                if overdue and not slot.overdue:
                    log.warning(
                        "runnable %s made no progress for %.0f s: no heartbeat until it does",
                        name,
                        idle,
                        extra={"runnable": name},
                    )
                elif slot.overdue and not overdue:
                    log.info("runnable %s progresses again", name, extra={"runnable": name})
                slot.overdue = overdue
                if overdue:
                    names.append(name)
        return names
