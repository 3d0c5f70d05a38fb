"""Task use cases: create (queued, and offered at once when an agent is free), read,
complete and cancel."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.domain import lifecycle
from services.routing.domain.matching import effective_requirements
from services.routing.domain.model import NotFound, Task
from services.routing.domain.state import TaskRecord
from services.routing.offering import Offering
from services.routing.ports import TaskStore
from services.routing.views import task_view


def lang(tag: str) -> str:
    # Tags compare case-insensitively (RFC 5646): stored lower-case on the way in.
    return tag.lower()


class TaskUseCases:
    def __init__(
        self,
        store: TaskStore,
        offering: Offering,
        config: RoutingConfig,
        now: Callable[[], int],
    ) -> None:
        self.store = store
        self.offering = offering
        self.config = config
        self.now = now

    def create_task(self, cmd: Mapping[str, Any], task_id: str | None = None) -> dict[str, Any]:
        cfg, policy = self.config, self.config.priority
        now = self.now()
        tid = task_id or "t_" + uuid.uuid4().hex
        category, sentiment = cmd["category"], cmd.get("sentiment")
        tier = cmd.get("tier")
        due = policy.sla_due_ms(category, now)
        escalated = policy.escalates(sentiment)
        fields: dict[str, Any] = {
            "customer_id": cmd["customer_id"],
            "channel": cmd["channel"],
            "category": category,
            "skills": json.dumps(cmd.get("skills") or {}, sort_keys=True),
            "language": lang(cmd.get("language") or ""),
            "tier": tier or "",
            "sentiment": "" if sentiment is None else sentiment,
            "attributes": json.dumps(cmd.get("attributes") or {}, sort_keys=True),
            "status": "queued",
            "priority": policy.priority(category, tier, sentiment),
            "key": policy.order_key(category, tier, sentiment, due),
            "created": now,
            "due": due,
            "verified": "0",
            "declined": "{}",
            "offers": 0,
            "escalated": "1" if escalated else "0",
        }
        if cmd.get("case_id"):
            fields["case_id"] = cmd["case_id"]
        timers: list[tuple[str, int]] = [
            (f"sla|{tid}", due),
            (f"lead|{tid}", now + round(cfg.lead_after_s * 1000)),
        ]
        if escalated and cfg.senior_team:
            until = now + round(cfg.senior_team_wait_s * 1000)
            fields.update(team=cfg.senior_team, team_until=until)
            timers.append((f"relax|{tid}|{len(cfg.relaxation)}", until))
        for n, step in enumerate(cfg.relaxation):
            timers.append((f"relax|{tid}|{n}", now + round(step.after_seconds * 1000)))
        sticky_ms = round(cfg.sticky_timeout_s * 1000)
        record = _new_record(tid, fields)
        route, offer = None, None
        if cfg.strategy_name == "longest_idle":
            # The first eligible agent in idle order is the decision: the create step
            # takes it itself, on the requirements the domain computes for now.
            route = effective_requirements(record.task, cfg.relaxation, now)
            rid = "r_" + uuid.uuid4().hex
            offer = (rid, now + round(cfg.reservation_timeout_s * 1000))
        made = self.store.create_task(
            tid, fields, timers, escalated, now, sticky_ms, route=route, offer=offer
        )
        if not made.created:
            return self.task_view(tid)
        if made.verified_by:
            record = replace(record, verified=True)
        if made.agent and offer:
            return task_view(_reserved(record, offer[0], made.agent))
        if made.sticky_agent:
            sticky = replace(
                record.task, sticky_agent=made.sticky_agent, sticky_until_ms=now + sticky_ms
            )
            record = replace(record, task=sticky)
        if route is None or made.sticky_agent:  # the domain decides (strategy, sticky agent)
            got = self.offering.match_task(tid, record.task)
            if got:
                record = _reserved(record, *got)
        return task_view(record)

    def get_task(self, tid: str) -> TaskRecord:
        record = self.store.task(tid)
        if record is None:
            raise NotFound(f"no task {tid}")
        return record

    def task_view(self, tid: str) -> dict[str, Any]:
        return task_view(self.get_task(tid))

    def exists(self, tid: str) -> bool:
        return self.store.task(tid) is not None

    def complete_task(self, tid: str, as_agent: str | None = None) -> dict[str, Any]:
        step = self.store.complete(tid, self.config.retention_s, self.now(), as_agent)
        lifecycle.check(step, "task", tid)
        if step.freed_agent and step.waiting:
            self.offering.match_agent(step.freed_agent)
        assert step.task is not None  # an accepted step returns the task
        return task_view(step.task)

    def cancel_task(self, tid: str, reason: str, as_agent: str | None = None) -> dict[str, Any]:
        cfg = self.config
        step = self.store.cancel(tid, reason, cfg.retention_s, self.now(), as_agent)
        lifecycle.check(step, "task", tid)
        if step.freed_agent:
            self.offering.match_agent(step.freed_agent)
        return self.task_view(tid)


def _new_record(tid: str, fields: Mapping[str, Any]) -> TaskRecord:
    """The task as stored by the create step (before anything else touches it)."""
    sentiment = fields["sentiment"]
    task = Task(
        id=tid,
        channel=fields["channel"],
        customer_id=fields["customer_id"],
        category=fields["category"],
        skills={k: int(v) for k, v in json.loads(fields["skills"]).items()},
        language=fields["language"] or None,
        tier=fields["tier"] or None,
        sentiment=float(sentiment) if sentiment != "" else None,
        created_ms=int(fields["created"]),
        sla_due_ms=int(fields["due"]),
        team=fields.get("team") or None,
        team_until_ms=int(fields.get("team_until", 0)),
        status="queued",
    )
    return TaskRecord(
        task=task,
        attributes=json.loads(fields["attributes"]),
        priority=int(fields["priority"]),
        escalated=fields["escalated"] == "1",
        case_id=fields.get("case_id") or None,
    )


def _reserved(record: TaskRecord, rid: str, agent: str) -> TaskRecord:
    return replace(
        record,
        task=replace(record.task, status="reserved"),
        reservation_id=rid,
        agent_id=agent,
    )
