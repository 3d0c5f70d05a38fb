"""Customer data use cases: export, erasure, and what CRM and identity events change
(merges, verifications)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.offering import Offering
from services.routing.ports import PrivacyStore
from services.routing.views import reservation_view, task_view


class PrivacyUseCases:
    def __init__(
        self,
        store: PrivacyStore,
        offering: Offering,
        config: RoutingConfig,
        now: Callable[[], int],
    ) -> None:
        self.store = store
        self.offering = offering
        self.config = config
        self.now = now

    def export_customer(self, customer_id: str) -> dict[str, Any]:
        tasks = self.store.tasks(self.store.customer_task_ids(customer_id))
        reservations = []
        for record in tasks:
            for rid in record.offered:
                res = self.store.reservation(rid)
                if res is not None:
                    reservations.append(reservation_view(res))
        return {
            "customer_id": customer_id,
            "tasks": [task_view(t) for t in tasks],
            "reservations": reservations,
            "last_agent_id": self.store.last_agent(customer_id),
        }

    def erase_customer(self, customer_id: str) -> int:
        freed = self.store.erase_customer(customer_id, self.now())
        for aid in dict.fromkeys(freed):
            self.offering.match_agent(aid)
        return len(freed)

    def merge_customers(self, survivor_id: str, source_id: str) -> int:
        """CRM merged ``source`` into ``survivor``: the source's tasks follow it."""
        return self.store.rekey_customer(source_id, survivor_id, False, self.now())

    def unmerge_customers(self, survivor_id: str, source_id: str) -> int:
        """An undone merge: the tasks that came from ``source`` go back to it."""
        return self.store.rekey_customer(survivor_id, source_id, True, self.now())

    def mark_verified(self, customer_id: str, verification_id: str) -> int:
        """Marks the open tasks, and remembers it for tasks created within the TTL."""
        return self.store.mark_verified(
            customer_id, verification_id, self.now(), self.config.verified_ttl_s
        )
