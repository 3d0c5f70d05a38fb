"""Stream consumer process of the routing service: `python -m services.routing.consumer`.

- ``crm.profile.erased``: cancel and forget every task of the customer.
- ``identity.verification.approved``: mark the customer's waiting tasks verified.
- ``crm.profile.merged`` / ``.unmerged``: the source's tasks (and sticky agent) follow the
  survivor, and go back on an unmerge - so export and erasure of the survivor cover them.
- ``crm.case.created``: when ``ROUTING_TASKS_FROM_CASES`` is on, queue a task for
  the case (task id derived from the case id, so a redelivery creates nothing). A case
  on a channel no agent can have (CRM allows e.g. ``0800``) gets no task, with a warning.

Every handler is idempotent by construction (state checks in the Lua scripts).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from services.routing.bootstrap import build as build_wiring
from services.routing.domain.model import CATEGORIES, CHANNEL_NAME
from services.routing.service import RoutingService
from shared import compaction
from shared.bus import Consumer, Delivery, Handler
from shared.config import Settings
from shared.consumer_main import Runnable, consumer_name, run
from shared.events import STREAMS, Event

log = logging.getLogger("sb.routing.consumer")

CASE_PRIORITY_TO_CATEGORY = {"urgent": "urgent", "high": "urgent", "critical": "urgent"}


def handlers(service: RoutingService, redis: Any = None) -> Mapping[str, Handler]:
    """``redis``: where to ask for the compaction after an erasure (none: not asked)."""

    def erased(event: Event, _delivery: Delivery) -> None:
        profile_id = event.data.get("profile_id")
        if isinstance(profile_id, str) and profile_id:
            service.erase_customer(profile_id)
            if redis is not None:
                compaction.request(redis)  # the AOF still holds what was deleted

    def verified(event: Event, _delivery: Delivery) -> None:
        customer_id = event.data.get("customer_id")
        if isinstance(customer_id, str) and customer_id:
            service.mark_verified(customer_id, str(event.data.get("verification_id", "")))

    def case_created(event: Event, _delivery: Delivery) -> None:
        data = event.data
        if not (isinstance(data.get("profile_id"), str) and data.get("case_id")):
            return
        task_id = "case_" + hashlib.sha256(str(data["case_id"]).encode()).hexdigest()[:24]
        if service.task_exists(task_id):
            return  # a redelivery
        priority = str(data.get("priority") or "").lower()
        category = CASE_PRIORITY_TO_CATEGORY.get(priority, "basic")
        if priority in CATEGORIES:
            category = priority
        channel = str(data.get("channel") or "chat").lower()
        if not CHANNEL_NAME.fullmatch(channel):
            # CRM's channel names are wider than agents' (a leading digit, 40 chars): a
            # task there would wait in a queue no agent can ever serve. Nothing to retry.
            log.warning(
                "case not routed: no agent can have its channel",
                extra={"case_id": str(data["case_id"]), "channel": channel[:64]},
            )
            return
        service.create_task(
            {
                "channel": channel,
                "customer_id": data["profile_id"],
                "category": category,
                "skills": {},
                "attributes": {"case_number": data.get("case_number"), "source": "crm"},
                "case_id": str(data["case_id"]),
            },
            task_id=task_id,
        )

    def merged(event: Event, _delivery: Delivery) -> None:
        survivor, source = event.data.get("survivor_id"), event.data.get("source_id")
        if isinstance(survivor, str) and isinstance(source, str) and survivor and source:
            service.merge_customers(survivor, source)

    def unmerged(event: Event, _delivery: Delivery) -> None:
        survivor, source = event.data.get("survivor_id"), event.data.get("source_id")
        if isinstance(survivor, str) and isinstance(source, str) and survivor and source:
            service.unmerge_customers(survivor, source)

    table: dict[str, Handler] = {
        "crm.profile.erased": erased,
        "crm.profile.merged": merged,
        "crm.profile.unmerged": unmerged,
        "identity.verification.approved": verified,
    }
    if service.config.tasks_from_cases:
        table["crm.case.created"] = case_created
    return table


def build(settings: Settings, redis: Any) -> Sequence[Runnable]:
    wiring = build_wiring(settings, redis)
    service = wiring.service
    consumer = Consumer(
        redis,
        [STREAMS["crm"], STREAMS["identity"]],
        "routing",
        consumer_name("routing"),
        handlers(service, redis),
        **settings.consumer_options(),
    )
    # First response per category, folded from our own assignment events.
    kpi = Consumer(
        redis,
        [STREAMS["routing"]],
        wiring.kpi_group,
        consumer_name(wiring.kpi_group),
        wiring.kpi_handlers,
        **settings.consumer_options(),
    )
    return [consumer.run, kpi.run]


if __name__ == "__main__":
    run("routing", build)
