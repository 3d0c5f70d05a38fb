"""Agent use cases: profile, status, and the roster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from services.routing.domain.model import NotFound
from services.routing.domain.state import AgentRecord
from services.routing.offering import Offering
from services.routing.ports import AgentStore
from services.routing.tasks import lang
from services.routing.views import agent_view


class AgentUseCases:
    def __init__(self, store: AgentStore, offering: Offering, now: Callable[[], int]) -> None:
        self.store = store
        self.offering = offering
        self.now = now

    def put_agent(self, aid: str, profile: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        profile = dict(profile)
        if "languages" in profile:
            profile["languages"] = sorted({lang(x) for x in profile["languages"] or ()})
        change = self.store.put_agent(aid, profile, self.now())
        for tid in change.requeued:  # offers ended by going offline go to the next agent
            self.offering.match_task(tid)
        if profile.get("status") == "available":
            self.offering.match_agent(aid)
        return self.agent_view(aid), change.created

    def set_agent_status(self, aid: str, status: str) -> dict[str, Any]:
        change = self.store.set_status(aid, status, "agent", self.now())
        if change is None:
            raise NotFound(f"no agent {aid}")
        for tid in change.requeued:
            self.offering.match_task(tid)
        if status == "available":
            self.offering.match_agent(aid)
        return self.agent_view(aid)

    def get_agent(self, aid: str) -> AgentRecord:
        record = self.store.agent(aid)
        if record is None:
            raise NotFound(f"no agent {aid}")
        return record

    def agent_view(self, aid: str) -> dict[str, Any]:
        return agent_view(self.get_agent(aid))

    def agent_stats(self, after: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        rows = self.store.agents_after(after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return [agent_view(r) for r in rows], (rows[-1].id if more and rows else None)
