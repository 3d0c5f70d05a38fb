"""Offering work: a queued task to the best eligible agent, a freed agent to the most
urgent task, the timers and the sweep that catch everything else.

Matching is optimistic: the decision is taken here, in Python, on a fresh read of a
bounded candidate list (the domain's pluggable strategies), and the reservation is
committed by a Lua script that re-checks what makes it safe - the task still queued,
the agent still available, unchanged (profile version) and below its channel
capacity. A lost race costs a retry, never a double assignment. Every transition that
frees capacity or requeues a task triggers matching at once; the dispatcher's timers
and sweep catch everything else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from services.routing.config import RoutingConfig
from services.routing.domain.matching import choose_agent, choose_task, effective_requirements
from services.routing.domain.model import Agent, Task
from services.routing.domain.state import ReserveOutcome
from services.routing.ports import AgentStore, TaskStore


class Offering:
    def __init__(
        self,
        tasks: TaskStore,
        agents: AgentStore,
        config: RoutingConfig,
        now: Callable[[], int],
    ) -> None:
        self.tasks = tasks
        self.agents = agents
        self.config = config
        self.now = now
        self.strategy = config.strategy

    def match_task(self, tid: str, task: Task | None = None) -> tuple[str, str] | None:
        """Offer a queued task to the best eligible agent now: (reservation, agent) or None."""
        now = self.now()
        if task is None:
            record = self.tasks.task(tid)
            if record is None or record.task.status != "queued":
                return None
            task = record.task
        cfg = self.config
        req = effective_requirements(task, cfg.relaxation, now)
        sticky: Agent | None = None
        versions: dict[str, str] = {}
        if task.sticky_agent and now < task.sticky_until_ms:
            found = self.agents.agent(task.sticky_agent)
            if found is not None:
                sticky = found.agent
                versions[sticky.id] = found.version
        # The index is ordered by idle time: for the default strategy the first
        # eligible agent is the answer; other strategies choose among a page.
        want = 1 if cfg.strategy_name == "longest_idle" else cfg.scan_limit
        excluded: set[str] = set()
        if sticky is not None:  # decided without reading any candidate
            first = choose_agent(task, [], now_ms=now, steps=cfg.relaxation, sticky=sticky)
            if first.wait_for_sticky:
                return None
        for _attempt in range(5):
            page = self.agents.candidates(
                req, want, declined=task.declined, exclude=excluded, now_ms=now
            )
            versions.update({a.id: a.version for a in page})
            choice = choose_agent(
                task,
                [a.agent for a in page],
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
            outcome = self.tasks.reserve(tid, chosen.id, rid, expires, versions[chosen.id], now)
            if outcome is ReserveOutcome.OK:
                return rid, chosen.id
            if outcome is ReserveOutcome.TASK_NOT_QUEUED:
                return None
            excluded.add(chosen.id)  # lost a race for this agent: next best
        return None

    def match_agent(self, aid: str) -> list[str]:
        """Give a freed agent the most urgent waiting tasks it can take."""
        made: list[str] = []
        cfg = self.config
        for _attempt in range(16):
            record = self.agents.agent(aid)
            if record is None or record.agent.status != "available":
                return made
            agent = record.agent
            now = self.now()
            picked: Task | None = None
            for channel in sorted(agent.capacity):
                if agent.free(channel) <= 0:
                    continue
                for offset in range(0, cfg.scan_limit * 2, 16):
                    head = self.tasks.queue_head(channel, 16, offset)
                    picked = choose_task(agent, head, now_ms=now, steps=cfg.relaxation)
                    if picked or len(head) < 16:
                        break
                if picked:
                    break
            if picked is None:
                return made
            rid = "r_" + uuid.uuid4().hex
            expires = now + round(cfg.reservation_timeout_s * 1000)
            outcome = self.tasks.reserve(picked.id, aid, rid, expires, record.version, now)
            if outcome is ReserveOutcome.OK:
                made.append(rid)
            elif outcome not in (ReserveOutcome.TASK_NOT_QUEUED, ReserveOutcome.AGENT_CHANGED):
                return made
        return made

    def tick(self, limit: int = 500) -> int:
        """Fire due timers (each exactly once), then match what they released."""
        cfg = self.config
        out = self.tasks.tick(
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
        channels = self.tasks.channels()
        available = self.agents.available_counts(channels)
        for channel in channels:
            if not available.get(channel):
                continue
            head = self.tasks.queue_head(channel, per_channel)
            rest = self.tasks.queue_window(channel, per_channel, after=per_channel)
            for tid in dict.fromkeys(t.id for t in [*head, *rest]):
                if self.match_task(tid):
                    made += 1
        return made
