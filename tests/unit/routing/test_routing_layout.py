"""Routing keeps the service template's rules: entrypoints reach no adapter, no module
grows past 500 lines, the Lua lives in .lua files whose headers state the contract the
Python callers are checked against."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.routing.adapters.redis import scripts

ROOT = Path(__file__).resolve().parents[3]
ROUTING = ROOT / "services" / "routing"
LUA = ROUTING / "adapters" / "redis" / "lua"
ENTRYPOINTS = ("api.py", "consumer.py", "dispatcher.py")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_entrypoints_import_no_adapter(name: str) -> None:
    assert {m for m in imports(ROUTING / name) if ".adapters" in m} == set()


@pytest.mark.parametrize("path", sorted(ROUTING.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


@pytest.mark.parametrize("path", sorted(ROUTING.rglob("*.py")), ids=lambda p: p.name)
def test_no_lua_inside_python(path: Path) -> None:
    assert not re.search(r"redis\.call\(|\bKEYS\[1\]\s*,|local function", path.read_text())


@pytest.mark.parametrize("name", scripts.NAMES)
def test_every_script_states_its_contract_and_loads(name: str) -> None:
    src = scripts.source(name)
    text = (LUA / f"{name}.lua").read_text()
    assert text.startswith(f"-- {name}.lua: ") and "-- KEYS[1] " in text and "-- Returns: " in text
    used = {int(n) for n in re.findall(r"ARGV\[(\d+)\]", text.split("\n\n", 1)[1])}
    assert used == set(range(6, 6 + len(src.argv))), "the header names every ARGV it reads"
    assert src.source.startswith("-- prelude.lua")


def test_every_lua_file_is_a_script_or_a_library_one_uses() -> None:
    libraries = {"prelude"} | {
        lib.strip().removesuffix(".lua")
        for name in scripts.NAMES
        for m in re.findall(r"^-- Uses: (.+)$", (LUA / f"{name}.lua").read_text(), re.M)
        for lib in m.split(",")
    }
    assert {p.stem for p in LUA.glob("*.lua")} == set(scripts.NAMES) | libraries


def test_a_caller_that_drifts_from_the_header_is_refused() -> None:
    reserve = scripts.source("reserve")
    with pytest.raises(TypeError, match="missing \\['version'\\]"):
        reserve.args(dict.fromkeys(reserve.argv[:-1], ""))


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_entrypoints_call_use_cases_not_the_store(name: str) -> None:
    tree = ast.parse((ROUTING / name).read_text())
    reached = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "store" not in reached
