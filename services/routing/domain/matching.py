"""Who gets which task: eligibility, relaxation, sticky agent, pluggable choice strategies.

A strategy is a plain function ``(eligible agents, requirements) -> agent``;
register more with ``@register_strategy("name")`` and select one by name in
the configuration (``ROUTING_STRATEGY``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.routing.domain.model import Agent, InvalidRequest, Requirements, Task

Strategy = Callable[[Sequence[Agent], Requirements], Agent]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str) -> Callable[[Strategy], Strategy]:
    def add(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn

    return add


def strategy_named(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown routing strategy {name!r}; known: {sorted(STRATEGIES)}"
        ) from None


@register_strategy("longest_idle")
def longest_idle(agents: Sequence[Agent], req: Requirements) -> Agent:
    return min(agents, key=lambda a: (a.idle_since_ms, a.id))


@register_strategy("best_fit")
def best_skill_fit(agents: Sequence[Agent], req: Requirements) -> Agent:
    """The agent whose levels exceed the requirements least: experts stay free."""

    def surplus(a: Agent) -> int:
        return sum(a.skills.get(s, 0) - level for s, level in req.skills.items())

    return min(agents, key=lambda a: (surplus(a), a.idle_since_ms, a.id))


@register_strategy("least_loaded")
def least_loaded(agents: Sequence[Agent], req: Requirements) -> Agent:
    return min(agents, key=lambda a: (a.occupancy, a.idle_since_ms, a.id))


# -- relaxation -------------------------------------------------------------------
@dataclass(frozen=True)
class RelaxationStep:
    """After ``after_seconds`` of waiting: lower levels, drop a skill, widen language/team."""

    after_seconds: float
    lower_levels_by: int = 0
    drop_skill: str | None = None  # "*" drops every skill
    widen_language: bool = False
    widen_team: bool = False

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> RelaxationStep:
        known = {"after", "lower_levels_by", "drop_skill", "widen_language", "widen_team"}
        if not isinstance(raw, Mapping) or set(raw) - known or "after" not in raw:
            raise InvalidRequest(f"a relaxation step has the keys {sorted(known)}: {raw!r}")
        after = raw["after"]
        lower = raw.get("lower_levels_by", 0)
        drop = raw.get("drop_skill")
        if not isinstance(after, int | float) or after < 0:
            raise InvalidRequest("relaxation 'after' must be a number of seconds >= 0")
        if not isinstance(lower, int) or lower < 0:
            raise InvalidRequest("relaxation 'lower_levels_by' must be an integer >= 0")
        if drop is not None and not isinstance(drop, str):
            raise InvalidRequest("relaxation 'drop_skill' must be a skill name or '*'")
        return cls(
            after_seconds=float(after),
            lower_levels_by=lower,
            drop_skill=drop,
            widen_language=bool(raw.get("widen_language", False)),
            widen_team=bool(raw.get("widen_team", False)),
        )


def effective_requirements(
    task: Task, steps: Iterable[RelaxationStep], now_ms: int
) -> Requirements:
    """The task's requirements with every step already due applied (steps are cumulative)."""
    skills = dict(task.skills)
    language = task.language
    team = task.team if (not task.team_until_ms or now_ms < task.team_until_ms) else None
    waited = task.waited_ms(now_ms) / 1000
    for step in steps:
        if waited < step.after_seconds:
            continue
        if step.lower_levels_by:
            skills = {s: max(1, lvl - step.lower_levels_by) for s, lvl in skills.items()}
        if step.drop_skill == "*":
            skills = {}
        elif step.drop_skill:
            skills.pop(step.drop_skill, None)
        if step.widen_language:
            language = None
        if step.widen_team:
            team = None
    return Requirements(channel=task.channel, skills=skills, language=language, team=team)


def next_relaxation_ms(task: Task, steps: Iterable[RelaxationStep], now_ms: int) -> int | None:
    """When the requirements relax next (a timer re-tries matching then), or None."""
    due = [
        task.created_ms + round(step.after_seconds * 1000)
        for step in steps
        if task.created_ms + round(step.after_seconds * 1000) > now_ms
    ]
    return min(due) if due else None


# -- eligibility and choice -------------------------------------------------------------
def is_eligible(agent: Agent, req: Requirements) -> bool:
    return (
        agent.status == "available"
        and agent.free(req.channel) > 0
        and all(agent.skills.get(s, 0) >= level for s, level in req.skills.items())
        and (req.language is None or req.language in agent.languages)
        and (req.team is None or agent.team == req.team)
    )


def qualified(agent: Agent, req: Requirements) -> bool:
    """Could serve the task once free: skills, language, team and the channel at all."""
    return (
        agent.capacity.get(req.channel, 0) > 0
        and all(agent.skills.get(s, 0) >= level for s, level in req.skills.items())
        and (req.language is None or req.language in agent.languages)
        and (req.team is None or agent.team == req.team)
    )


def _not_declined(task: Task, agent: Agent, now_ms: int) -> bool:
    return task.declined.get(agent.id, 0) <= now_ms


@dataclass(frozen=True)
class Choice:
    agent: Agent | None
    wait_for_sticky: bool = False  # no agent now: the previous agent may free up shortly


def choose_agent(
    task: Task,
    candidates: Iterable[Agent],
    *,
    now_ms: int,
    strategy: Strategy = longest_idle,
    steps: Sequence[RelaxationStep] = (),
    sticky: Agent | None = None,
) -> Choice:
    """The agent to offer ``task`` to now.

    The customer's previous agent comes first when eligible; while the sticky
    window is open and that agent is not offline, the task waits for them.
    """
    req = effective_requirements(task, steps, now_ms)
    if sticky is not None and sticky.id == task.sticky_agent:
        if is_eligible(sticky, req) and _not_declined(task, sticky, now_ms):
            return Choice(sticky)
        if (
            now_ms < task.sticky_until_ms
            and sticky.status != "offline"
            and qualified(sticky, req)
            and _not_declined(task, sticky, now_ms)
        ):
            return Choice(None, wait_for_sticky=True)
    eligible = [a for a in candidates if is_eligible(a, req) and _not_declined(task, a, now_ms)]
    if not eligible:
        return Choice(None)
    return Choice(strategy(eligible, req))


def choose_task(
    agent: Agent,
    tasks_in_order: Iterable[Task],
    *,
    now_ms: int,
    steps: Sequence[RelaxationStep] = (),
) -> Task | None:
    """The first waiting task (queue order) this agent may take now."""
    for task in tasks_in_order:
        if task.sticky_agent and task.sticky_agent != agent.id and now_ms < task.sticky_until_ms:
            continue  # held for the customer's previous agent
        if not _not_declined(task, agent, now_ms):
            continue
        if is_eligible(agent, effective_requirements(task, steps, now_ms)):
            return task
    return None
