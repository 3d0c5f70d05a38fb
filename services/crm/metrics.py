"""The CRM's KPI projection: crm.case.* events -> 5-minute counters in Redis.

Run by the CRM consumer process (group ``crm-kpi`` on ``sb:events:crm``);
read by ``GET /v1/stats``. The folding rules are the domain's
(``services.crm.domain.kpis``); this module only reads and writes Redis.
"""

from __future__ import annotations

import time
from typing import Any

from services.crm.domain.kpis import case_counters, summary
from shared.bus import Delivery, Handler
from shared.events import Event, utcnow_iso
from shared.kpis import BucketCounters, occurred_epoch

GROUP = "crm-kpi"
STATE_TTL = 90 * 86400  # a case's contact count outlives any reasonable reopening


def handlers(redis: Any) -> dict[str, Handler]:
    counters = BucketCounters(redis, GROUP)
    contacts = counters.state_key("contacts")  # case id -> contacts so far
    resolved = counters.state_key("resolved")  # case ids resolved at least once

    def fold(event: Event, delivery: Delivery) -> None:
        case_id = event.data.get("case_id")
        if not isinstance(case_id, str):
            return
        so_far = int(redis.hget(contacts, case_id) or 0)
        already = bool(redis.sismember(resolved, case_id))
        add, more, first = case_counters(event.type, event.data, so_far, already)
        if not add:
            return
        with delivery.atomic() as pipe:
            counters.stage(pipe, occurred_epoch(event), add)
            if more:
                pipe.hincrby(contacts, case_id, more)
                pipe.expire(contacts, STATE_TTL)
            if first:
                pipe.sadd(resolved, case_id)
                pipe.expire(resolved, STATE_TTL)

    return {"crm.case.created": fold, "crm.case.updated": fold}


def stats(redis: Any, window_seconds: int) -> dict[str, Any]:
    totals = BucketCounters(redis, GROUP).window(window_seconds, time.time())
    return {"window_seconds": window_seconds, "generated_at": utcnow_iso(), **summary(totals)}
