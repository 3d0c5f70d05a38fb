"""Reservation (offer) use cases: an agent's offers, long-polled; accept and reject."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.domain import lifecycle
from services.routing.domain.state import Outcome, Step
from services.routing.offering import Offering
from services.routing.ports import ReservationStore
from services.routing.views import reservation_view


class ReservationUseCases:
    def __init__(
        self,
        store: ReservationStore,
        offering: Offering,
        require_agent: Callable[[str], object],
        config: RoutingConfig,
        now: Callable[[], int],
    ) -> None:
        self.store = store
        self.offering = offering
        self.require_agent = require_agent  # 404 for an unknown agent
        self.config = config
        self.now = now

    def reservations_of(self, aid: str) -> list[dict[str, Any]]:
        self.require_agent(aid)
        return [reservation_view(r) for r in self.store.pending_reservations(aid)]

    def wait_for_offers(self, aid: str, timeout_s: float) -> list[dict[str, Any]]:
        """The agent's pending offers, waiting up to ``timeout_s`` for one to be made.

        Blocks on the agent's offer notifications in Redis, not a sleep loop; the
        cursor is read before the offers so an offer made in between still wakes it.
        """
        deadline = time.monotonic() + timeout_s
        cursor = self.store.offer_cursor(aid)
        items = self.reservations_of(aid)
        while not items:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # In slices: the Redis client's socket timeout is 10 s.
            cursor = self.store.wait_offer(aid, cursor, max(1, round(min(left, 5.0) * 1000)))
            items = self.reservations_of(aid)
        return items

    def accept(self, rid: str, as_agent: str | None = None) -> dict[str, Any]:
        cfg = self.config
        step = self.store.accept(
            rid,
            cfg.sticky_memory_s,
            self.now(),
            round(cfg.decline_cooloff_s * 1000),
            cfg.away_after_missed,
            as_agent,
        )
        if step.outcome is Outcome.EXPIRED:  # ended as a timeout: offer the task anew
            assert step.reservation is not None
            self.offering.match_task(step.reservation.task_id)
            self.offering.match_agent(step.reservation.agent_id)
            step = Step(Outcome.REFUSED, state="timeout")
        lifecycle.check(step, "reservation", rid)
        assert step.reservation is not None  # an accepted step returns the reservation
        return reservation_view(step.reservation)

    def reject(self, rid: str, as_agent: str | None = None) -> dict[str, Any]:
        cooloff = round(self.config.decline_cooloff_s * 1000)
        step = self.store.reject(rid, cooloff, self.now(), as_agent)
        lifecycle.check(step, "reservation", rid)
        assert step.reservation is not None
        self.offering.match_task(step.reservation.task_id)
        self.offering.match_agent(step.reservation.agent_id)
        return reservation_view(step.reservation)
