"""The Lua scripts of ``lua/``, read with importlib.resources.

A script may need library files (``lib_*.lua``, local functions) before it: they are
sent as one text, so a script stays one round trip.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

NEEDS = {
    "reserve": ("lib_reserve",),
    "reserve_turn": ("lib_reserve",),
    "settle_success": ("lib_settle_success",),
    "accept_step": ("lib_claim_step",),
    "create": ("lib_events", "lib_create"),
    "start": ("lib_events", "lib_create"),
    "approve": ("lib_events", "lib_approve"),
    "breaker_allow": ("lib_now",),
    "breaker_result": ("lib_now",),
    "claim_settle_approve": (
        "lib_claim_step",
        "lib_settle_success",
        "lib_events",
        "lib_approve",
    ),
}


@cache
def lua(name: str) -> str:
    """The text of script ``name`` with the libraries it needs before it."""
    folder = files("services.identity.adapters.redis") / "lua"
    parts = [*NEEDS.get(name, ()), name]
    return "\n".join((folder / f"{part}.lua").read_text() for part in parts)
