"""Routing state in Redis: hashes, sorted-set indexes and the Lua transitions
(``lua/*.lua``; the key layout is in ``keys.py``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.cluster import RedisCluster

from services.routing.adapters.redis import kpis, scripts
from services.routing.adapters.redis.keys import Keys
from services.routing.adapters.redis.records import (
    agent_record,
    pairs,
    reservation_record,
    task_from_hash,
    task_record,
)
from services.routing.adapters.redis.relay import OutboxRelay
from services.routing.domain.model import Requirements, Task, iso
from services.routing.domain.state import (
    AgentChange,
    AgentRecord,
    AgentTotals,
    Creation,
    Outcome,
    QueueDepth,
    Reservation,
    ReserveOutcome,
    Step,
    TaskRecord,
)
from services.routing.domain.stats import AnswerTotals, sum_buckets
from shared import idempotency
from shared.kpis import BucketCounters
from shared.logs import request_id_var


def _refusal(outcome: str) -> Step:
    """A script's refusal: 'missing', 'not_yours' or '<thing>_<state>'."""
    if outcome == Outcome.MISSING:
        return Step(Outcome.MISSING)
    if outcome == Outcome.NOT_YOURS:
        return Step(Outcome.NOT_YOURS)
    return Step(Outcome.REFUSED, state=outcome.split("_", 1)[-1])


def _reservation_step(rid: str, result: Any) -> Step:
    if isinstance(result, str):
        return _refusal(result)
    outcome = Outcome.EXPIRED if result[0] == "expired" else Outcome.OK
    return Step(outcome, reservation=reservation_record(rid, pairs(result[1])))


class RedisRoutingStore(OutboxRelay):
    """Every routing port on Redis (standalone or cluster)."""

    def __init__(self, redis: Any, pool: str = "default") -> None:
        self.redis = redis
        self.pool = pool
        self.keys = Keys(pool)
        self.prefix = self.keys.prefix
        self.outbox = self.keys.outbox
        self._sources = {name: scripts.source(name) for name in scripts.NAMES}
        self._scripts = {
            name: redis.register_script(src.source) for name, src in self._sources.items()
        }

    def key(self, *parts: str) -> str:
        return self.keys.key(*parts)

    def _run(self, name: str, now_ms: int, **args: Any) -> Any:
        common = [
            self.prefix,
            now_ms,
            iso(now_ms),
            uuid.uuid4().hex[:30],
            request_id_var.get() or uuid.uuid4().hex,
        ]
        own = self._sources[name].args(args)
        return self._scripts[name](keys=[self.outbox], args=common + own)

    # -- agents ------------------------------------------------------------------
    def put_agent(self, aid: str, profile: Mapping[str, Any], now_ms: int) -> AgentChange:
        result = self._run("agent_put", now_ms, agent_id=aid, profile=json.dumps(profile))
        return AgentChange(bool(result[0]), tuple(str(t) for t in result[1:]))

    def put_agents(self, profiles: Mapping[str, Mapping[str, Any]], now_ms: int) -> None:
        """Seed many agents in pipelined batches (imports, benchmarks); one script each."""
        items = list(profiles.items())
        if isinstance(self.redis, RedisCluster):  # cluster pipelines refuse scripts
            for aid, profile in items:
                self.put_agent(aid, profile, now_ms)
            return
        for i in range(0, len(items), 500):
            pipe = self.redis.pipeline(transaction=False)
            for aid, profile in items[i : i + 500]:
                common = [self.prefix, now_ms, iso(now_ms), uuid.uuid4().hex[:30], "seed"]
                own = self._sources["agent_put"].args(
                    {"agent_id": aid, "profile": json.dumps(profile)}
                )
                self._scripts["agent_put"](keys=[self.outbox], args=common + own, client=pipe)
            pipe.execute()

    def set_status(self, aid: str, status: str, reason: str, now_ms: int) -> AgentChange | None:
        """None: no such agent."""
        result = self._run("agent_status", now_ms, agent_id=aid, status=status, reason=reason)
        if result[0] == "missing":
            return None
        return AgentChange(False, tuple(str(t) for t in result[1:]))

    def agent(self, aid: str) -> AgentRecord | None:
        h = self.redis.hgetall(self.keys.agent(aid))
        return agent_record(aid, h) if h else None

    def agents_after(self, after: str, limit: int) -> list[AgentRecord]:
        start = f"({after}" if after else "-"
        ids = self.redis.zrangebylex(self.key("agents"), start, "+", start=0, num=limit)
        return self._agents(ids)

    def _agents(self, ids: Sequence[str]) -> list[AgentRecord]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for aid in ids:
            pipe.hgetall(self.keys.agent(aid))
        return [agent_record(a, h) for a, h in zip(ids, pipe.execute(), strict=True) if h]

    def candidates(
        self,
        req: Requirements,
        want: int,
        *,
        declined: Mapping[str, int],
        exclude: Iterable[str] = (),
        now_ms: int,
        max_scan: int = 1024,
    ) -> list[AgentRecord]:
        """Up to ``want`` eligible agents, longest idle first.

        The server-side scan walks the smallest (channel, language, skill) index, so a
        decision reads a few agents, not all of them.
        """
        flat = self._run(
            "candidates",
            now_ms,
            channel=req.channel,
            language=req.language or "*",
            skills=json.dumps(dict(req.skills)) if req.skills else "{}",
            team=req.team or "",
            declined=json.dumps(dict(declined)) if declined else "{}",
            want=want,
            max_scan=max_scan,
            exclude=json.dumps(sorted(exclude)) if exclude else "[]",
        )
        return [agent_record(flat[i], pairs(flat[i + 1])) for i in range(0, len(flat), 2)]

    def reindex_agents(self, now_ms: int, batch: int = 500) -> int:
        """Re-file every agent in the candidate indexes its state calls for (idempotent).

        Run at dispatcher start: agents filed before the level and team indexes
        existed would otherwise be missing from them until their next change.
        """
        done = 0
        while ids := self.redis.zrange(self.key("agents"), done, done + batch - 1):
            self._run("reindex", now_ms, agent_ids=json.dumps(ids))
            done += len(ids)
        return done

    def agent_totals(self) -> AgentTotals:
        """Agents per status, busy slots and capacity of agents not offline per channel,
        kept incrementally by the scripts."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.key("agent_counts"))
        pipe.hgetall(self.key("busy_slots"))
        pipe.hgetall(self.key("capacity_slots"))
        counts, busy, capacity = pipe.execute()
        return AgentTotals(
            {k: int(v) for k, v in counts.items()},
            {k: int(v) for k, v in busy.items()},
            {k: int(v) for k, v in capacity.items()},
        )

    def available_counts(self, channels: Iterable[str]) -> dict[str, int]:
        channels = list(channels)
        pipe = self.redis.pipeline(transaction=False)
        for ch in channels:
            pipe.zcard(self.key("idx", ch, "*", "*"))
        return dict(zip(channels, pipe.execute(), strict=True))

    # -- tasks -------------------------------------------------------------------
    def create_task(
        self,
        tid: str,
        fields: Mapping[str, Any],
        timers: Sequence[tuple[str, int]],
        escalated: bool,
        now_ms: int,
        sticky_timeout_ms: int = 20_000,
        route: Requirements | None = None,
        offer: tuple[str, int] | None = None,
    ) -> Creation:
        """Store and queue a task.

        With ``route`` (requirements now) and ``offer`` (reservation id, expiry) the
        script also offers it to the longest-idle eligible agent, unless the customer
        has a sticky agent - the default strategy decided in the same atomic step.
        """
        rid, expires = offer or ("", 0)
        created, sticky, agent, verified = self._run(
            "task_create",
            now_ms,
            task_id=tid,
            task=json.dumps(fields),
            timers=json.dumps([[m, d] for m, d in timers]),
            escalated="1" if escalated else "0",
            sla_due_at=iso(int(fields["due"])),
            sticky_timeout_ms=sticky_timeout_ms,
            route="1" if route is not None else "0",
            language=(route.language if route else None) or "*",
            skills=json.dumps(dict(route.skills)) if route and route.skills else "{}",
            team=(route.team if route else None) or "",
            reservation_id=rid,
            expires_ms=expires,
            expires_at=iso(expires) if expires else "",
        )
        return Creation(bool(created), sticky or None, agent or None, verified or None)

    def task(self, tid: str) -> TaskRecord | None:
        h = self.redis.hgetall(self.keys.task(tid))
        return task_record(tid, h) if h else None

    def _task_hashes(self, ids: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for tid in ids:
            pipe.hgetall(self.keys.task(tid))
        return [(t, h) for t, h in zip(ids, pipe.execute(), strict=True) if h]

    def tasks(self, ids: Sequence[str]) -> list[TaskRecord]:
        return [task_record(t, h) for t, h in self._task_hashes(ids)]

    def queue_head(self, channel: str, limit: int, offset: int = 0) -> list[Task]:
        ids = self.redis.zrange(self.keys.queue(channel), offset, offset + limit - 1)
        return [task_from_hash(t, h) for t, h in self._task_hashes(ids)]

    def queue_window(self, channel: str, limit: int, after: int = 0) -> list[Task]:
        """The next ``limit`` queued tasks past rank ``after``, from a cursor in Redis.

        The cursor (``sweep_at:<ch>``) is shared by every dispatcher, so together they
        walk the whole queue, one window each, and wrap at its end: every queued task
        is looked at within about ``len(queue) / limit`` sweeps, however deep it sits.
        Ranks shift as tasks leave, so a task may be skipped once, but only by moving
        towards the head, which every sweep reads.
        """
        cursor = self.key("sweep_at", channel)
        start = self.redis.incrby(cursor, limit) - limit
        if after + start >= self.redis.zcard(self.key("queue", channel)):
            self.redis.set(cursor, limit)  # wrap; two dispatchers racing here only repeat
            start = 0
        return self.queue_head(channel, limit, after + start)

    def channels(self) -> list[str]:
        return sorted(self.redis.smembers(self.key("channels")))

    def last_agent(self, customer_id: str) -> str | None:
        return self.redis.get(self.key("last_agent", customer_id))

    def customer_task_ids(self, customer_id: str) -> list[str]:
        return sorted(self.redis.smembers(self.key("cust", customer_id)))

    # -- transitions -----------------------------------------------------------------
    def reserve(
        self, tid: str, aid: str, rid: str, expires_ms: int, version: str, now_ms: int
    ) -> ReserveOutcome:
        return ReserveOutcome(
            self._run(
                "reserve",
                now_ms,
                task_id=tid,
                agent_id=aid,
                reservation_id=rid,
                expires_ms=expires_ms,
                expires_at=iso(expires_ms),
                version=version,
            )
        )

    def accept(
        self,
        rid: str,
        sticky_memory_s: int,
        now_ms: int,
        cooloff_ms: int = 30_000,
        away_after: int = 3,
        as_agent: str | None = None,
    ) -> Step:
        """The reservation after the step; ``EXPIRED``: past its expires_at, ended as a
        timeout in the same step; ``NOT_YOURS``: not ``as_agent``'s offer."""
        minute = str(now_ms // 60_000)
        result = self._run(
            "accept",
            now_ms,
            reservation_id=rid,
            minute=minute,
            sticky_memory_s=sticky_memory_s,
            cooloff_ms=cooloff_ms,
            away_after=away_after,
            as_agent=as_agent or "",
        )
        return _reservation_step(rid, result)

    def reject(self, rid: str, cooloff_ms: int, now_ms: int, as_agent: str | None = None) -> Step:
        result = self._run(
            "reject", now_ms, reservation_id=rid, cooloff_ms=cooloff_ms, as_agent=as_agent or ""
        )
        return _reservation_step(rid, result)

    def complete(
        self, tid: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step:
        """The task after the step, the agent freed and the tasks waiting on its channel."""
        result = self._run(
            "complete", now_ms, task_id=tid, retention_s=retention_s, as_agent=as_agent or ""
        )
        if result[0] != "ok":
            return _refusal(result[0])
        task = task_record(tid, pairs(result[3]))
        return Step(Outcome.OK, task=task, freed_agent=result[1], waiting=int(result[2]))

    def cancel(
        self, tid: str, reason: str, retention_s: int, now_ms: int, as_agent: str | None = None
    ) -> Step:
        outcome, freed = self._run(
            "cancel",
            now_ms,
            task_id=tid,
            reason=reason,
            retention_s=retention_s,
            as_agent=as_agent or "",
        )
        if outcome != "ok":
            return _refusal(outcome)
        return Step(Outcome.OK, freed_agent=freed or None)

    def erase_customer(self, customer_id: str, now_ms: int) -> list[str]:
        freed = list(self._run("erase", now_ms, customer_id=customer_id))
        idempotency.forget(self.redis, customer_id)  # stored responses name the customer
        return freed

    def rekey_customer(self, src: str, dst: str, unmerge: bool, now_ms: int) -> int:
        return int(
            self._run(
                "rekey",
                now_ms,
                from_customer=src,
                to_customer=dst,
                unmerge="1" if unmerge else "0",
            )
        )

    def mark_verified(
        self, customer_id: str, verification_id: str, now_ms: int, remember_s: int = 1800
    ) -> int:
        return int(
            self._run(
                "verified",
                now_ms,
                customer_id=customer_id,
                verification_id=verification_id,
                remember_s=remember_s,
            )
        )

    def tick(
        self,
        limit: int,
        cooloff_ms: int,
        away_after: int,
        lead_team: str,
        now_ms: int,
        lead_wait_ms: int = 600_000,
    ) -> list[str]:
        return list(
            self._run(
                "tick",
                now_ms,
                limit=limit,
                cooloff_ms=cooloff_ms,
                away_after=away_after,
                lead_team=lead_team,
                lead_wait_ms=lead_wait_ms,
            )
        )

    def next_timer_ms(self) -> int | None:
        first = self.redis.zrange(self.key("timers"), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    # -- reservations ------------------------------------------------------------------
    def reservation(self, rid: str) -> Reservation | None:
        h = self.redis.hgetall(self.keys.reservation(rid))
        return reservation_record(rid, h) if h else None

    def pending_reservations(self, aid: str) -> list[Reservation]:
        ids = sorted(self.redis.smembers(self.key("agent_res", aid)))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.hgetall(self.key("res", rid))
        return [reservation_record(r, h) for r, h in zip(ids, pipe.execute(), strict=True) if h]

    def offer_cursor(self, aid: str) -> str:
        """The id of the agent's latest offer notification ("0-0" when none)."""
        last = self.redis.xrevrange(self.key("offers", aid), count=1)
        return last[0][0] if last else "0-0"

    def wait_offer(self, aid: str, after: str, block_ms: int) -> str:
        """Block until an offer notification newer than ``after`` (or the timeout);
        returns the newest id seen. Every waiter of the agent is woken."""
        got = self.redis.xread({self.key("offers", aid): after}, count=8, block=block_ms)
        return got[0][1][-1][0] if got and got[0][1] else after

    # -- statistics ----------------------------------------------------------------------
    def waiting(
        self, categories: Sequence[str], channels: Sequence[str]
    ) -> dict[tuple[str, str], QueueDepth]:
        """(category, channel) -> waiting count and oldest created ms (None: none waits)."""
        pairs = [(c, ch) for c in categories for ch in channels]
        pipe = self.redis.pipeline(transaction=False)
        for c, ch in pairs:
            pipe.zcard(self.key("waiting", c, ch))
            pipe.zrange(self.key("waiting", c, ch), 0, 0, withscores=True)
        raw = pipe.execute()
        out = {}
        for i, pair in enumerate(pairs):
            count, oldest = raw[2 * i], raw[2 * i + 1]
            out[pair] = QueueDepth(count, int(oldest[0][1]) if oldest else None)
        return out

    def answered(self, minutes: Sequence[int]) -> dict[tuple[str, str], AnswerTotals]:
        """Answers per (category, channel) over the minute buckets."""
        pipe = self.redis.pipeline(transaction=False)
        for m in minutes:
            pipe.hgetall(self.key("stats", "m", str(m)))
        return sum_buckets(pipe.execute())

    def kpi_window(self, window_seconds: int, now_s: float) -> dict[str, int]:
        """First-response counters over the window (folded by the KPI projection)."""
        return BucketCounters(self.redis, kpis.GROUP).window(window_seconds, now_s)
