"""Eligibility, choice strategies, the sticky agent and relaxation steps."""

from __future__ import annotations

import pytest

from services.routing.domain.matching import (
    STRATEGIES,
    RelaxationStep,
    choose_agent,
    choose_task,
    effective_requirements,
    is_eligible,
    next_relaxation_ms,
    register_strategy,
    strategy_named,
)
from services.routing.domain.model import Agent, InvalidRequest, Requirements, Task

NOW = 1_000_000


def agent(aid: str = "a1", **kw: object) -> Agent:
    base: dict = {
        "skills": {"billing": 4, "returns": 2},
        "languages": frozenset({"zh", "en"}),
        "capacity": {"chat": 3, "voice": 1},
        "load": {},
        "status": "available",
        "idle_since_ms": NOW - 10_000,
    }
    base.update(kw)
    return Agent(aid, **base)  # type: ignore[arg-type]


def task(**kw: object) -> Task:
    base: dict = {
        "channel": "chat",
        "customer_id": "c-1",
        "skills": {"billing": 3},
        "language": "zh",
        "created_ms": NOW - 5_000,
        "sla_due_ms": NOW + 55_000,
    }
    base.update(kw)
    return Task("t1", **base)  # type: ignore[arg-type]


REQ = Requirements(channel="chat", skills={"billing": 3}, language="zh")


def test_an_available_agent_with_skill_language_and_capacity_is_eligible() -> None:
    assert is_eligible(agent(), REQ)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "away"},
        {"status": "offline"},
        {"load": {"chat": 3}},
        {"capacity": {"voice": 1}},
        {"skills": {"billing": 2}},
        {"skills": {"returns": 5}},
        {"languages": frozenset({"en"})},
    ],
)
def test_an_agent_missing_any_condition_is_not_eligible(change: dict) -> None:
    assert not is_eligible(agent(**change), REQ)


def test_a_team_requirement_admits_only_that_team() -> None:
    req = Requirements(channel="chat", team="senior")
    assert not is_eligible(agent(team="general"), req)
    assert is_eligible(agent(team="senior"), req)


def test_longest_idle_is_the_default_choice() -> None:
    old = agent("old", idle_since_ms=NOW - 60_000)
    new = agent("new", idle_since_ms=NOW - 1_000)
    assert choose_agent(task(), [new, old], now_ms=NOW).agent == old


def test_best_fit_keeps_the_expert_free() -> None:
    expert = agent("expert", skills={"billing": 5}, idle_since_ms=NOW - 90_000)
    fit = agent("fit", skills={"billing": 3}, idle_since_ms=NOW - 1_000)
    chosen = choose_agent(task(), [expert, fit], now_ms=NOW, strategy=strategy_named("best_fit"))
    assert chosen.agent == fit


def test_least_loaded_prefers_the_emptiest_agent() -> None:
    busy = agent("busy", load={"chat": 2}, idle_since_ms=NOW - 90_000)
    calm = agent("calm", load={"chat": 0}, idle_since_ms=NOW - 1_000)
    chosen = choose_agent(task(), [busy, calm], now_ms=NOW, strategy=strategy_named("least_loaded"))
    assert chosen.agent == calm


def test_strategies_are_pluggable_by_name() -> None:
    @register_strategy("alphabetical")
    def alphabetical(agents, req):  # type: ignore[no-untyped-def]
        return min(agents, key=lambda a: a.id)

    try:
        chosen = choose_agent(
            task(), [agent("b"), agent("a")], now_ms=NOW, strategy=strategy_named("alphabetical")
        )
        assert chosen.agent is not None and chosen.agent.id == "a"
    finally:
        del STRATEGIES["alphabetical"]


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        strategy_named("coin_flip")


def test_nobody_eligible_means_no_choice() -> None:
    assert choose_agent(task(), [agent(status="away")], now_ms=NOW).agent is None


def test_an_agent_who_declined_is_skipped_until_the_cooloff_ends() -> None:
    t = task(declined={"a1": NOW + 1_000})
    assert choose_agent(t, [agent()], now_ms=NOW).agent is None
    assert choose_agent(t, [agent()], now_ms=NOW + 1_000).agent is not None


# -- sticky ---------------------------------------------------------------------------
def test_the_previous_agent_is_preferred_when_eligible() -> None:
    prev = agent("prev", idle_since_ms=NOW)
    other = agent("other", idle_since_ms=NOW - 99_000)
    t = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    assert choose_agent(t, [other], now_ms=NOW, sticky=prev).agent == prev


def test_a_busy_previous_agent_is_waited_for_within_the_sticky_timeout() -> None:
    prev = agent("prev", load={"chat": 3})
    t = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    choice = choose_agent(t, [agent("other")], now_ms=NOW, sticky=prev)
    assert choice.agent is None and choice.wait_for_sticky


def test_a_previous_agent_who_cannot_serve_the_task_is_not_waited_for() -> None:
    prev = agent("prev", skills={"billing": 1})
    t = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    other = agent("other")
    assert choose_agent(t, [other], now_ms=NOW, sticky=prev).agent == other


def test_after_the_sticky_timeout_anyone_eligible_gets_the_task() -> None:
    prev = agent("prev", load={"chat": 3})
    t = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    other = agent("other")
    assert choose_agent(t, [other], now_ms=NOW + 20_000, sticky=prev).agent == other


def test_an_offline_previous_agent_is_skipped_at_once() -> None:
    prev = agent("prev", status="offline")
    t = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    other = agent("other")
    assert choose_agent(t, [other], now_ms=NOW, sticky=prev).agent == other


def test_other_agents_leave_a_task_held_for_its_previous_agent() -> None:
    held = task(sticky_agent="prev", sticky_until_ms=NOW + 20_000)
    assert choose_task(agent("other"), [held], now_ms=NOW) is None
    assert choose_task(agent("prev"), [held], now_ms=NOW) == held
    assert choose_task(agent("other"), [held], now_ms=NOW + 20_000) == held


def test_an_agent_takes_the_first_task_of_the_queue_it_can_serve() -> None:
    french = Task("fr", channel="chat", customer_id="c", language="fr")
    mine = Task("zh", channel="chat", customer_id="c", language="zh")
    later = Task("zh2", channel="chat", customer_id="c", language="zh")
    assert choose_task(agent(), [french, mine, later], now_ms=NOW) == mine


# -- relaxation -----------------------------------------------------------------------
STEPS = [
    RelaxationStep(after_seconds=30, lower_levels_by=1),
    RelaxationStep(after_seconds=60, drop_skill="returns"),
    RelaxationStep(after_seconds=90, widen_language=True),
]


def test_no_step_applies_before_its_delay() -> None:
    t = task(skills={"billing": 4, "returns": 3}, created_ms=NOW - 10_000)
    assert effective_requirements(t, STEPS, NOW).skills == {"billing": 4, "returns": 3}


def test_steps_apply_cumulatively_as_the_task_waits() -> None:
    t = task(skills={"billing": 4, "returns": 3}, created_ms=NOW - 65_000)
    req = effective_requirements(t, STEPS, NOW)
    assert req.skills == {"billing": 3} and req.language == "zh"
    req = effective_requirements(t, STEPS, NOW + 30_000)
    assert req.language is None


def test_levels_never_drop_below_one() -> None:
    t = task(skills={"billing": 1}, created_ms=NOW - 31_000)
    assert effective_requirements(t, STEPS, NOW).skills == {"billing": 1}


def test_a_relaxed_task_reaches_a_less_skilled_agent() -> None:
    junior = agent("junior", skills={"billing": 3})
    t = task(skills={"billing": 4}, created_ms=NOW - 10_000)
    assert choose_agent(t, [junior], now_ms=NOW, steps=STEPS).agent is None
    assert choose_agent(t, [junior], now_ms=NOW + 20_000, steps=STEPS).agent == junior


def test_the_next_relaxation_time_is_the_earliest_step_still_ahead() -> None:
    t = task(created_ms=NOW - 40_000)
    assert next_relaxation_ms(t, STEPS, NOW) == NOW - 40_000 + 60_000
    assert next_relaxation_ms(t, STEPS, NOW + 60_000) is None


def test_a_team_requirement_lapses_at_its_deadline() -> None:
    t = task(team="senior", team_until_ms=NOW + 1)
    assert effective_requirements(t, [], NOW).team == "senior"
    assert effective_requirements(t, [], NOW + 1).team is None
    assert effective_requirements(task(team="lead"), [], NOW + 10**9).team == "lead"


@pytest.mark.parametrize(
    "raw",
    [{}, {"after": -1}, {"after": 5, "lower_levels_by": "x"}, {"after": 5, "bogus": 1}],
)
def test_malformed_relaxation_steps_are_refused(raw: dict) -> None:
    with pytest.raises(InvalidRequest):
        RelaxationStep.from_dict(raw)


def test_a_relaxation_step_reads_from_configuration() -> None:
    step = RelaxationStep.from_dict({"after": 30, "drop_skill": "*", "widen_language": True})
    assert step == RelaxationStep(30.0, drop_skill="*", widen_language=True)
