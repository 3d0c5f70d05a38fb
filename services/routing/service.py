"""The routing use cases, one object: each area's (``agents.py``, ``tasks.py``,
``reservations.py``, ``offering.py``, ``reporting.py``, ``privacy.py``) wired to the
store, the configuration and one clock. Entrypoints call these methods."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.routing.agents import AgentUseCases
from services.routing.config import RoutingConfig
from services.routing.offering import Offering
from services.routing.ports import RoutingStore
from services.routing.privacy import PrivacyUseCases
from services.routing.reporting import ReportingUseCases
from services.routing.reservations import ReservationUseCases
from services.routing.tasks import TaskUseCases


def _now_ms() -> int:
    return int(time.time() * 1000)


class RoutingService:
    def __init__(
        self,
        store: RoutingStore,
        config: RoutingConfig,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.now = clock or _now_ms
        self.offering = Offering(store, store, config, self.now)
        self.agents = AgentUseCases(store, self.offering, self.now)
        self.tasks = TaskUseCases(store, self.offering, config, self.now)
        self.reservations = ReservationUseCases(
            store, self.offering, self.agents.get_agent, config, self.now
        )
        self.reporting = ReportingUseCases(store, config, self.now)
        self.privacy = PrivacyUseCases(store, self.offering, config, self.now)
        # The entrypoints' vocabulary, area by area.
        self.put_agent = self.agents.put_agent
        self.set_agent_status = self.agents.set_agent_status
        self.agent_view = self.agents.agent_view
        self.agent_stats = self.agents.agent_stats
        self.create_task = self.tasks.create_task
        self.get_task = self.tasks.get_task
        self.task_view = self.tasks.task_view
        self.task_exists = self.tasks.exists
        self.complete_task = self.tasks.complete_task
        self.cancel_task = self.tasks.cancel_task
        self.reservations_of = self.reservations.reservations_of
        self.wait_for_offers = self.reservations.wait_for_offers
        self.accept = self.reservations.accept
        self.reject = self.reservations.reject
        self.match_task = self.offering.match_task
        self.match_agent = self.offering.match_agent
        self.tick = self.offering.tick
        self.sweep = self.offering.sweep
        self.queue_stats = self.reporting.queue_stats
        self.agent_totals = self.reporting.agent_totals
        self.kpi_stats = self.reporting.kpi_stats
        self.export_customer = self.privacy.export_customer
        self.erase_customer = self.privacy.erase_customer
        self.merge_customers = self.privacy.merge_customers
        self.unmerge_customers = self.privacy.unmerge_customers
        self.mark_verified = self.privacy.mark_verified
