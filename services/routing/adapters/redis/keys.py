"""The routing key layout in Redis, one place for Python; the Lua scripts build the same
keys from the prefix they are given (ARGV[1]).

Keys (all under ``sb:rt:{pool}:`` - one hash tag, one cluster slot per pool, so every
script touches a single slot and stays atomic on Redis Cluster):

    agent:<id>            hash: profile (JSON fields), status, idle_since, load:<channel>, version
    agents                zset of agent ids (score 0, listed by name)
    agent_counts          hash status -> agents; busy_slots hash channel -> offers and tasks held
    idx:<ch>:<lang>:<skill>  zset agent -> idle_since; '*' for any language / skill.
                          Holds exactly the available agents with free capacity on <ch>.
    idx:<ch>:<lang>:<skill>:<n>  the same, agents with <skill> at level >= n (n = 2..5)
    tidx:<ch>:<team>:<lang>  the same, agents of <team>; '*' for any language
    channels              set of channels ever served
    task:<id>             hash of the task
    queue:<ch>            zset task -> order key (lower first), queued tasks only
    sweep_at:<ch>         the sweep's rotating cursor (a rank past the head of queue:<ch>)
    waiting:<cat>:<ch>    zset task -> created ms (waiting count, longest wait)
    res:<id>              hash of a reservation; agent_res:<agent> set of pending ones
    cust:<customer>       set of task ids: no TTL while one is open, else its ended tasks'
                          longest; last_agent:<customer> the sticky agent;
                          verified:<customer> a recent verification id (TTL)
    offers:<agent>        tiny stream, one entry per offer made: wakes long-polls
    capacity_slots        hash channel -> capacity of the agents not offline
    timers                zset "<kind>|<id>" -> due ms (res, sla, lead, leadend, sticky, relax)
    stats:m:<minute>      hash "<cat>|<ch>|answered|within|wait_ms" counters, 2 h TTL
    lease:<name>          the relay's lease (one relay at a time keeps the event order)
    outbox                stream of events, relayed to sb:events:routing
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    pool: str = "default"

    @property
    def prefix(self) -> str:
        return f"sb:rt:{{{self.pool}}}:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def outbox(self) -> str:
        return self.prefix + "outbox"

    def agent(self, aid: str) -> str:
        return self.key("agent", aid)

    def task(self, tid: str) -> str:
        return self.key("task", tid)

    def reservation(self, rid: str) -> str:
        return self.key("res", rid)

    def queue(self, channel: str) -> str:
        return self.key("queue", channel)

    def any_index(self, channel: str) -> str:
        """Every available agent with free capacity on ``channel``."""
        return self.key("idx", channel, "*", "*")
