"""Routing's erasure forgets the idempotency records indexed under the customer."""

from __future__ import annotations

from typing import Any

from services.routing.consumer import handlers
from services.routing.service import RoutingService
from shared.events import Event


def test_erasing_a_customer_forgets_their_idempotency_records(
    service: RoutingService, redis: Any
) -> None:
    redis.set("sb:idem:routing:c:1", "record of p-9", ex=60)
    redis.set("sb:idem:routing:c:2", "record of someone else", ex=60)
    redis.sadd("sb:idem:subject:p-9", "sb:idem:routing:c:1")
    redis.sadd("sb:idem:subject:p-8", "sb:idem:routing:c:2")
    erased = Event.new("crm.profile.erased", {"profile_id": "p-9"}, source="crm")
    handlers(service)["crm.profile.erased"](erased, None)  # type: ignore[arg-type]
    assert not redis.exists("sb:idem:routing:c:1", "sb:idem:subject:p-9")
    assert redis.exists("sb:idem:routing:c:2", "sb:idem:subject:p-8") == 2
