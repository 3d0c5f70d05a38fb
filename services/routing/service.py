"""Routing use cases: load state through the store, decide with the domain, commit in one step.

Matching is optimistic: the decision is taken here, in Python, on a fresh
read of a bounded candidate list (the domain's pluggable strategies), and the
reservation is committed by a Lua script that re-checks what makes it safe -
the task still queued, the agent still available, unchanged (profile version)
and below its channel capacity. A lost race costs a retry, never a double
assignment. Every transition that frees capacity or requeues a task triggers
matching at once; the dispatcher's timers and sweep catch everything else.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from services.routing.config import RoutingConfig
from services.routing.domain.matching import (
    choose_agent,
    choose_task,
    effective_requirements,
)
from services.routing.domain.model import (
    AGENT_STATUSES,
    CATEGORIES,
    Agent,
    AgentBinding,
    InvalidTransition,
    NotFound,
    Task,
)
from services.routing.domain.stats import sum_buckets, window_minutes
from services.routing.ports import RoutingStore
from services.routing.records import agent_from_hash, iso, task_from_hash


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
        self.strategy = config.strategy

    # -- agents ------------------------------------------------------------------
    def put_agent(self, aid: str, profile: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        profile = dict(profile)
        if "languages" in profile:
            profile["languages"] = sorted({_lang(x) for x in profile["languages"] or ()})
        created, requeued = self.store.put_agent(aid, profile, self.now())
        for tid in requeued:  # offers ended by going offline go to the next agent
            self.match_task(tid)
        if profile.get("status") == "available":
            self.match_agent(aid)
        return self.agent_view(aid), created

    def set_agent_status(self, aid: str, status: str) -> dict[str, Any]:
        requeued = self.store.set_status(aid, status, "agent", self.now())
        for tid in requeued:
            self.match_task(tid)
        if status == "available":
            self.match_agent(aid)
        return self.agent_view(aid)

    def agent_view(self, aid: str) -> dict[str, Any]:
        agent, h = self.store.get_agent(aid)
        return _agent_view(agent, h)

    # -- tasks -------------------------------------------------------------------
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
            "skills": _json(cmd.get("skills") or {}),
            "language": _lang(cmd.get("language") or ""),
            "tier": tier or "",
            "sentiment": "" if sentiment is None else sentiment,
            "attributes": _json(cmd.get("attributes") or {}),
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
        h = {k: str(v) for k, v in fields.items()}
        route, offer = None, None
        if cfg.strategy_name == "longest_idle":
            # The first eligible agent in idle order is the decision: the create step
            # takes it itself, on the requirements the domain computes for now.
            route = effective_requirements(task_from_hash(tid, h), cfg.relaxation, now)
            rid = "r_" + uuid.uuid4().hex
            offer = (rid, now + round(cfg.reservation_timeout_s * 1000))
        created, sticky, agent, verified_by = self.store.create_task(
            tid,
            fields,
            timers,
            escalated,
            now,
            sticky_ms,
            route=route,
            offer=offer,
        )
        if not created:
            return self.task_view(tid)
        if verified_by:
            h.update(verified="1", verification_id=verified_by)
        if agent and offer:
            h.update(status="reserved", reservation=offer[0], agent=agent)
            return _task_view(tid, h)
        if sticky:
            h.update(sticky_agent=sticky, sticky_until=str(now + sticky_ms))
        if route is None or sticky:  # the domain decides (strategy, sticky agent)
            got = self.match_task(tid, task_from_hash(tid, h))
            if got:
                h.update(status="reserved", reservation=got[0], agent=got[1])
        return _task_view(tid, h)

    def get_task(self, tid: str) -> tuple[Task, dict[str, str]]:
        h = self.store.task_hash(tid)
        if not h:
            raise NotFound(f"no task {tid}")
        return task_from_hash(tid, h), h

    def task_view(self, tid: str) -> dict[str, Any]:
        return _task_view(tid, self.get_task(tid)[1])

    def complete_task(self, tid: str, as_agent: str | None = None) -> dict[str, Any]:
        outcome, agent, waiting, h = self.store.complete(
            tid, self.config.retention_s, self.now(), as_agent
        )
        self._raise_for(outcome, "task", tid)
        if agent and waiting:
            self.match_agent(agent)
        return _task_view(tid, h)

    def cancel_task(self, tid: str, reason: str, as_agent: str | None = None) -> dict[str, Any]:
        cfg = self.config
        outcome, freed = self.store.cancel(tid, reason, cfg.retention_s, self.now(), as_agent)
        self._raise_for(outcome, "task", tid)
        if freed:
            self.match_agent(freed)
        return self.task_view(tid)

    # -- reservations --------------------------------------------------------------
    def reservations_of(self, aid: str) -> list[dict[str, Any]]:
        self.store.get_agent(aid)  # 404 for an unknown agent
        return [_reservation_view(r, h) for r, h in self.store.pending_reservations(aid)]

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
        outcome, res = self.store.accept(
            rid,
            cfg.sticky_memory_s,
            self.now(),
            round(cfg.decline_cooloff_s * 1000),
            cfg.away_after_missed,
            as_agent,
        )
        if outcome == "expired":  # ended as a timeout: offer the task to the next agent
            self.match_task(res["task"])
            self.match_agent(res["agent"])
            outcome = "res_timeout"
        self._raise_for(outcome, "reservation", rid)
        return _reservation_view(rid, res)

    def reject(self, rid: str, as_agent: str | None = None) -> dict[str, Any]:
        cooloff = round(self.config.decline_cooloff_s * 1000)
        outcome, res = self.store.reject(rid, cooloff, self.now(), as_agent)
        self._raise_for(outcome, "reservation", rid)
        self.match_task(res["task"])
        self.match_agent(res["agent"])
        return _reservation_view(rid, res)

    @staticmethod
    def _raise_for(outcome: str, what: str, ident: str) -> None:
        if outcome == "ok":
            return
        if outcome == "missing":
            raise NotFound(f"no {what} {ident}")
        if outcome == "not_yours":  # a key bound to another agent (API.md B)
            raise AgentBinding(f"the {what} is another agent's; this API key acts only as its own")
        state = outcome.split("_", 1)[-1]
        raise InvalidTransition(f"the {what} is {state}")

    # -- matching ------------------------------------------------------------------
    def match_task(self, tid: str, task: Task | None = None) -> tuple[str, str] | None:
        """Offer a queued task to the best eligible agent now: (reservation, agent) or None."""
        now = self.now()
        if task is None:
            h = self.store.task_hash(tid)
            if not h or h.get("status") != "queued":
                return None
            task = task_from_hash(tid, h)
        cfg = self.config
        req = effective_requirements(task, cfg.relaxation, now)
        sticky: Agent | None = None
        versions: dict[str, str] = {}
        if task.sticky_agent and now < task.sticky_until_ms:
            sh = self.store.agent_hash(task.sticky_agent)
            if sh:
                sticky = agent_from_hash(task.sticky_agent, sh)
                versions[sticky.id] = sh.get("version", "")
        # The index is ordered by idle time: for the default strategy the first
        # eligible agent is the answer; other strategies choose among a page.
        want = 1 if cfg.strategy_name == "longest_idle" else cfg.scan_limit
        excluded: set[str] = set()
        if sticky is not None:  # decided without reading any candidate
            first = choose_agent(task, [], now_ms=now, steps=cfg.relaxation, sticky=sticky)
            if first.wait_for_sticky:
                return None
        for _attempt in range(5):
            page = self.store.candidates(
                req, want, declined=task.declined, exclude=excluded, now_ms=now
            )
            versions.update({a.id: v for a, v in page})
            choice = choose_agent(
                task,
                [a for a, _ in page],
                now_ms=now,
                strategy=self.strategy,
                steps=cfg.relaxation,
                sticky=sticky if sticky and sticky.id not in excluded else None,
            )
            if choice.agent is None:
                return None
            chosen = choice.agent
            rid = "r_" + uuid.uuid4().hex
            expires = now + round(cfg.reservation_timeout_s * 1000)
            outcome = self.store.reserve(tid, chosen.id, rid, expires, versions[chosen.id], now)
            if outcome == "ok":
                return rid, chosen.id
            if outcome == "task_not_queued":
                return None
            excluded.add(chosen.id)  # lost a race for this agent: next best
        return None

    def match_agent(self, aid: str) -> list[str]:
        """Give a freed agent the most urgent waiting tasks it can take."""
        made: list[str] = []
        cfg = self.config
        for _attempt in range(16):
            h = self.store.agent_hash(aid)
            if not h or h.get("status") != "available":
                return made
            agent = agent_from_hash(aid, h)
            now = self.now()
            picked: Task | None = None
            for channel in sorted(agent.capacity):
                if agent.free(channel) <= 0:
                    continue
                for offset in range(0, cfg.scan_limit * 2, 16):
                    head = self.store.queue_head(channel, 16, offset)
                    picked = choose_task(agent, head, now_ms=now, steps=cfg.relaxation)
                    if picked or len(head) < 16:
                        break
                if picked:
                    break
            if picked is None:
                return made
            rid = "r_" + uuid.uuid4().hex
            expires = now + round(cfg.reservation_timeout_s * 1000)
            outcome = self.store.reserve(picked.id, aid, rid, expires, h.get("version", ""), now)
            if outcome == "ok":
                made.append(rid)
            elif outcome not in ("task_not_queued", "agent_changed"):
                return made
        return made

    # -- timers -----------------------------------------------------------------------
    def tick(self, limit: int = 500) -> int:
        """Fire due timers (each exactly once), then match what they released."""
        cfg = self.config
        out = self.store.tick(
            limit,
            round(cfg.decline_cooloff_s * 1000),
            cfg.away_after_missed,
            cfg.lead_team,
            self.now(),
            round(cfg.lead_team_wait_s * 1000),
        )
        for item in dict.fromkeys(out):  # ordered, without duplicates
            kind, ident = item.split(":", 1)
            if kind == "t":
                self.match_task(ident)
            else:
                self.match_agent(ident)
        return len(out)

    def sweep(self, per_channel: int = 50) -> int:
        """Safety net: retry every queued task within a bounded time.

        Each pass tries the head of every queue (a router may have died mid-way) and
        the next window of the rest, from a cursor the dispatchers share: a task
        behind many that nobody can serve is still retried when an agent frees up,
        however deep it sits (head-of-line blocking). At most 2 x ``per_channel``
        tasks per channel per pass; channels without an available agent are skipped.
        """
        made = 0
        channels = self.store.channels()
        available = self.store.available_counts(channels)
        for channel in channels:
            if not available.get(channel):
                continue
            head = self.store.queue_head(channel, per_channel)
            rest = self.store.queue_window(channel, per_channel, after=per_channel)
            for tid in dict.fromkeys(t.id for t in [*head, *rest]):
                if self.match_task(tid):
                    made += 1
        return made

    # -- statistics -------------------------------------------------------------------
    def queue_stats(self) -> dict[str, Any]:
        now = self.now()
        channels = self.store.channels()
        waiting = self.store.waiting(CATEGORIES, channels)
        available = self.store.available_counts(channels)
        totals = sum_buckets(self.store.minute_buckets(window_minutes(now)))
        items = []
        for category in CATEGORIES:
            for channel in channels:
                count, oldest = waiting[(category, channel)]
                answered = totals.get((category, channel))
                items.append(
                    {
                        "category": category,
                        "channel": channel,
                        "waiting": count,
                        "longest_wait_seconds": round((now - oldest) / 1000, 3)
                        if oldest is not None
                        else 0.0,
                        "agents_available": available.get(channel, 0),
                        "answered": answered.answered if answered else 0,
                        "service_level": answered.service_level if answered else None,
                        "average_speed_of_answer_seconds": answered.average_speed_of_answer
                        if answered
                        else None,
                        "sla_target_seconds": self.config.priority.sla_seconds[category],
                    }
                )
        return {"window_seconds": 3600, "generated_at": iso(now), "items": items}

    def agent_totals(self) -> dict[str, Any]:
        """Agents per status; busy slots, capacity of the agents not offline and their
        occupancy (busy / capacity, as /v1/stats/agents per agent) per channel; without
        reading any agent."""
        by_status, busy, capacity = self.store.agent_totals()
        channels = sorted(set(busy) | set(capacity))
        return {
            "by_status": {s: by_status.get(s, 0) for s in AGENT_STATUSES},
            "busy_slots": busy,
            "capacity_slots": {ch: max(0, capacity.get(ch, 0)) for ch in channels},
            "occupancy": {
                ch: round(min(1.0, busy.get(ch, 0) / capacity[ch]), 4)
                if capacity.get(ch, 0) > 0
                else 0.0
                for ch in channels
            },
        }

    def agent_stats(self, after: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        rows = self.store.agents_after(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_agent_view(a, h) for a, h in rows]
        return items, (rows[-1][0].id if more and rows else None)

    # -- customers --------------------------------------------------------------------
    def export_customer(self, customer_id: str) -> dict[str, Any]:
        tasks = self.store.tasks(self.store.customer_task_ids(customer_id))
        reservations = []
        for _tid, h in tasks:
            for rid in filter(None, (h.get("offered") or "").split(",")):
                res = self.store.reservation(rid)
                if res:
                    reservations.append(_reservation_view(rid, res))
        return {
            "customer_id": customer_id,
            "tasks": [_task_view(t, h) for t, h in tasks],
            "reservations": reservations,
            "last_agent_id": self.store.last_agent(customer_id),
        }

    def erase_customer(self, customer_id: str) -> int:
        freed = self.store.erase_customer(customer_id, self.now())
        for aid in dict.fromkeys(freed):
            self.match_agent(aid)
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


def _lang(tag: str) -> str:
    # Tags compare case-insensitively (RFC 5646): stored lower-case on the way in.
    return tag.lower()


# -- views ----------------------------------------------------------------------------
def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _agent_view(agent: Agent, h: Mapping[str, str]) -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "name": h.get("name", ""),
        "team": agent.team,
        "skills": dict(agent.skills),
        "languages": sorted(agent.languages),
        "channels": dict(agent.capacity),
        "status": agent.status,
        "load": dict(agent.load),
        "occupancy": round(agent.occupancy, 4),
        "idle_since": iso(agent.idle_since_ms) if agent.idle_since_ms else None,
    }


def _task_view(tid: str, h: Mapping[str, str]) -> dict[str, Any]:
    import json

    t = task_from_hash(tid, h)
    return {
        "task_id": tid,
        "status": t.status,
        "channel": t.channel,
        "customer_id": t.customer_id,
        "category": t.category,
        "skills": dict(t.skills),
        "language": t.language,
        "tier": t.tier,
        "sentiment": t.sentiment,
        "attributes": json.loads(h.get("attributes") or "{}"),
        "priority": int(h.get("priority", 0)),
        "created_at": iso(t.created_ms),
        "sla_due_at": iso(t.sla_due_ms),
        "agent_id": h.get("agent") or None,
        "reservation_id": h.get("reservation") or None,
        "verified": h.get("verified") == "1",
        "escalated": h.get("escalated") == "1" or h.get("sla_escalated") == "1",
        "team": t.team,
        "case_id": h.get("case_id") or None,
    }


def _reservation_view(rid: str, h: Mapping[str, str]) -> dict[str, Any]:
    return {
        "reservation_id": rid,
        "task_id": h.get("task"),
        "agent_id": h.get("agent"),
        "status": h.get("status"),
        "channel": h.get("channel"),
        "created_at": iso(int(h.get("created", 0))),
        "expires_at": h.get("expires_at"),
    }
