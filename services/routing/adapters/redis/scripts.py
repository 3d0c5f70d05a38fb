"""The routing Lua scripts, loaded from ``lua/*.lua`` with importlib.resources.

Each script file states its contract in its header: ``-- ARGV[n] name: what`` for its
own arguments (from ARGV[6]; ARGV[1..5] are the common ones of ``prelude.lua``) and
``-- Uses: x.lua`` for the libraries prepended before it (after the prelude). Callers
pass the script's arguments by name; a name missing or unknown is a TypeError here,
so the header and the callers cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_ARG = re.compile(r"^-- ARGV\[(\d+)\] (\w+):", re.M)
_USES = re.compile(r"^-- Uses: (.+)$", re.M)
FIRST_OWN_ARG = 6  # ARGV[1..5]: prefix, now ms, now ISO, event id base, correlation id

NAMES = (
    "agent_put",
    "agent_status",
    "task_create",
    "reserve",
    "accept",
    "reject",
    "complete",
    "cancel",
    "erase",
    "verified",
    "rekey",
    "tick",
    "reindex",
    "candidates",
)


def _text(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


@dataclass(frozen=True)
class ScriptSource:
    name: str
    source: str  # the prelude, the libraries it uses, then the script itself
    argv: tuple[str, ...]  # its own arguments' names, ARGV[6] first

    def args(self, named: dict[str, Any]) -> list[Any]:
        if set(named) != set(self.argv):
            missing, extra = set(self.argv) - set(named), set(named) - set(self.argv)
            raise TypeError(f"{self.name}.lua: missing {sorted(missing)}, unknown {sorted(extra)}")
        return [named[n] for n in self.argv]


@cache
def source(name: str) -> ScriptSource:
    body = _text(name)
    found = [(int(n), arg) for n, arg in _ARG.findall(body)]
    if [n for n, _ in found] != list(range(FIRST_OWN_ARG, FIRST_OWN_ARG + len(found))):
        raise ValueError(f"{name}.lua: ARGV header not numbered from {FIRST_OWN_ARG} in order")
    uses = _USES.search(body)
    libs = [u.strip().removesuffix(".lua") for u in uses.group(1).split(",")] if uses else []
    full = "\n".join([_text("prelude"), *(_text(lib) for lib in libs), body])
    return ScriptSource(name, full, tuple(arg for _, arg in found))
